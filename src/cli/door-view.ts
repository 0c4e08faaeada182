import { connect } from 'node:net';
import type { ClientAnswer, ClientQuestion } from '../app/contain-door.ts';
import type { Config } from '../config/index.ts';
import { configTextHash, readConfigSource } from '../config/source.ts';
import type { StoredListing } from '../credentials/stored-listing.ts';
import { deepFreeze } from '../deep-freeze.ts';
import { resolveHome, runningProxyFiles } from '../paths.ts';
import { findRunningProxy } from '../running-proxy.ts';
import { keywayVersion } from '../version.ts';
import type { Args } from './args.ts';
import type { CommandIO } from './io.ts';

// `keyway run` and `keyway env` start where an agent feels it, once per tool call. Where a keyway
// runs for the home, its contain door (app/contain-door.ts) answers what they would otherwise load
// themselves: the config, validated (yaml and the schema are most of a run's start), if it came
// from the very text this process reads now, and the store's grants and agents (no secret), so the
// store is neither loaded nor decrypted. Any doubt (no door, another version, an edited file, no
// answer in time) and the command loads its own, exactly as before.

/** The door's answer arrives in a few ms; past this the command loads its own rather than wait. */
const ANSWER_MS = 2_000;

export interface ClientConfig {
  config: Config;
  /** The store's grants and agents as the running keyway has them (undefined: read the store here). */
  stored?: StoredListing | undefined;
}

/** The config for env and run (--home, --config), with the store's listing when the running keyway gave both. */
export async function clientConfig(args: Args, io: CommandIO): Promise<ClientConfig> {
  const home = resolveHome(args.string('home'), io.env);
  const file = args.string('config');
  const answered = await askRunningKeyway(home, file);
  if (answered !== undefined) return answered;
  const { configFor } = await import('./config-for.ts');
  return { config: configFor(args, io) };
}

async function askRunningKeyway(home: string, file: string | undefined): Promise<ClientConfig | undefined> {
  const record = findRunningProxy(runningProxyFiles(home).runningProxy);
  if (record?.door === undefined) return undefined;
  let question: ClientQuestion;
  try {
    const source = readConfigSource({ home, file });
    question = { v: 1, kind: 'client', home, path: source.path, sha256: configTextHash(source.text) };
  } catch {
    return undefined; // an unreadable config: the command's own load says why
  }
  const answer = await ask(record.door, question);
  if (answer === undefined || !answer.match || answer.version !== keywayVersion()) return undefined;
  return { config: deepFreeze(answer.config), stored: answer.stored };
}

/** One question, one JSON line back; undefined on any failure (nothing listening, a timeout, a closed door). */
function ask(path: string, question: ClientQuestion): Promise<ClientAnswer | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    let text = '';
    const done = (answer: ClientAnswer | undefined) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(ANSWER_MS, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => done(parseAnswer(text)));
    socket.write(`${JSON.stringify(question)}\n`);
  });
}

function parseAnswer(text: string): ClientAnswer | undefined {
  try {
    const answer = JSON.parse(text) as ClientAnswer;
    if (answer.match !== true) return undefined;
    if (typeof answer.config !== 'object' || answer.config === null || !Array.isArray(answer.stored?.grants) || !Array.isArray(answer.stored?.agents))
      return undefined;
    return answer;
  } catch {
    return undefined;
  }
}
