import { readAdminToken } from '../../admin/token.ts';
import { resolveHome, runningProxyFiles } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { type CommandIO, printJson } from '../io.ts';
import { callAdmin, type FoundProxy, goneNote, lookUpProxies } from '../running-status.ts';
import { commandLineIsKeyway } from './stop.ts';

// The proxy validates the config in a child process (up to 30 s under load), then answers.
const RELOAD_TIMEOUT_MS = 40_000;

type ReloadAnswer = { reloaded: true; changed: string[]; needs_restart: string[] } | { reloaded: false; error: { code: string; message: string } };

export const reload: Command = {
  name: 'reload',
  usage: `keyway reload [--pid PID] [--json] [--home DIR]

Makes the keyways running for this home (\`keyway status\` lists them; they share its config) re-read
the config file, each through its admin API (POST /api/reload with data/admin.token); --pid PID
reloads only that one. Changes apply to new requests; no connection is dropped. Prints the keys
that changed, and those that only a restart applies (listen addresses, admin, audit, oauth,
proxy.upstream_ca and the server-side timeouts).
A config that does not load is refused with the reason, and the running one stays: exit 1.
With the admin API off, it sends SIGHUP instead (the result is then in the proxy's log and the audit
log). Exits 1 with one line when no proxy runs.`,
  async run(argv, io) {
    const args = parse(argv, { pid: { type: 'string' } });
    const home = resolveHome(args.string('home'), io.env);
    const { running, gone } = await lookUpProxies(home, io.env);
    if (running.length === 0) {
      if (args.json) printJson(io, { reloaded: false, running: false, home });
      io.err(`keyway reload: no proxy is running for home ${home}${goneNote(gone)}`);
      return 1;
    }
    const pid = args.string('pid');
    const targets = pid === undefined ? running : running.filter((f) => String(f.proxy.pid) === pid);
    if (targets.length === 0) {
      io.err(`keyway reload: no keyway of this home has pid ${pid}; running: ${running.map((f) => f.proxy.pid).join(', ')}`);
      return 1;
    }
    const results = [];
    for (const found of targets) results.push(await reloadOne(found, home, args.json, io));
    if (args.json) printJson(io, results.length === 1 ? results[0]!.json : { reloaded: results.every((r) => r.ok), keyways: results.map((r) => r.json) });
    return results.every((r) => r.ok) ? 0 : 1;
  },
};

type Outcome = { ok: boolean; json: unknown };

async function reloadOne(found: FoundProxy, home: string, json: boolean, io: CommandIO): Promise<Outcome> {
  const { proxy, live, why } = found;
  if (proxy.admin === null) return signalReload(proxy.pid, json, io);
  if (live === undefined) {
    io.err(`keyway reload: cannot reach pid ${proxy.pid}: ${why}`);
    return { ok: false, json: { reloaded: false, pid: proxy.pid, error: { code: 'unreachable', message: why ?? '' } } };
  }
  const token = await readAdminToken(runningProxyFiles(home).adminToken, io.env);
  let answer: { status: number; body: unknown };
  try {
    answer = await callAdmin(proxy.admin, token, 'POST', '/api/reload', RELOAD_TIMEOUT_MS);
  } catch (err) {
    io.err(`keyway reload: the admin API of pid ${proxy.pid} did not answer: ${(err as Error).message}`);
    return { ok: false, json: { reloaded: false, pid: proxy.pid, error: { code: 'unreachable', message: (err as Error).message } } };
  }
  const body = answer.body as ReloadAnswer;
  const result = { ...body, pid: proxy.pid };
  if (answer.status === 200 && body.reloaded) {
    if (!json) io.out(describeChange(proxy.pid, body));
    return { ok: true, json: result };
  }
  const reason = !body.reloaded && typeof body.error?.message === 'string' ? body.error.message : `status ${answer.status}`;
  io.err(`keyway reload: the config was refused; pid ${proxy.pid} keeps the running one: ${reason}`);
  return { ok: false, json: result };
}

function describeChange(pid: number, body: { changed: string[]; needs_restart: string[] }): string {
  if (body.changed.length === 0) return `keyway (pid ${pid}) re-read its config: nothing changed`;
  const restart = body.needs_restart.length === 0 ? '' : `; a restart applies ${body.needs_restart.join(', ')}`;
  return `keyway (pid ${pid}) reloaded its config: changed ${body.changed.join(', ')}${restart}`;
}

/** admin.enabled: false: the signal is the only way in; its outcome is in the proxy's log and audit. */
function signalReload(pid: number, json: boolean, io: CommandIO): Outcome {
  if (!commandLineIsKeyway(pid)) {
    io.err(`keyway reload: cannot confirm that pid ${pid} is keyway (its admin API is off); send it SIGHUP yourself with \`kill -HUP ${pid}\` if it is`);
    return { ok: false, json: { signalled: false, pid } };
  }
  process.kill(pid, 'SIGHUP');
  if (!json) io.out(`sent SIGHUP to keyway (pid ${pid}); its log and \`keyway audit query --decision admin\` say whether the config was taken`);
  return { ok: true, json: { signalled: true, pid } };
}
