// `keyway policy`: the policy in effect (show, schema) and the proofs over it (check, lint, test,
// diff). None of them contacts an upstream or reads a secret: they read the config, the Cedar files
// and the audit log. The proofs live in src/proofs/; this file reads arguments and prints.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAuditTime } from '../../audit/read/filter.ts';
import type { Config } from '../../config/index.ts';
import { KeywayError } from '../../errors/index.ts';
import type { LoadedPolicy } from '../../policy/cedar/contract.ts';
import { loadConfig } from '../../config/load.ts';
import { resolveHome } from '../../paths.ts';
import { authorityAdded } from '../../proofs/authority.ts';
import { dryRunRequest } from '../../proofs/dry-run.ts';
import { compiledYaml, loadCurrentPolicy, loadPolicyAt, policySchemaText } from '../../proofs/engine.ts';
import { candidateOf, judgeRequest, type StoredRouting } from '../../proofs/judge.ts';
import { lintHome } from '../../proofs/lint.ts';
import { type Judged, loggedRequests, replayAgainstLog, replayBetween } from '../../proofs/replay.ts';
import { scopesOf } from '../../proofs/scope.ts';
import { type Args, parse } from '../args.ts';
import type { Command } from '../command.ts';
import { configFor, servicesFor } from '../context.ts';
import { storedRouting } from '../../operations/policy-routing.ts';
import { type CommandIO, printJson, usageError } from '../io.ts';
import { printCheck, printDiff, printLint, printTest } from './policy-print.ts';

const USAGE = `keyway policy show [--cedar]
keyway policy schema
keyway policy lint
keyway policy check --agent A [--grant G] [--body-size N] METHOD URL
keyway policy test [--policy DIR|FILE] [--since T] [--agent A] [--json]
keyway policy diff OLD NEW [--since T] [--agent A] [--json]

The policy is the agents' YAML rules (compiled into Cedar) and the Cedar files (<home>/policies/*.cedar
and policy.files). None of these commands contacts an upstream or reads a secret.

  show          the policy in effect: its hash, files and policy ids; --cedar prints what the YAML
                compiles to, then each Cedar file
  schema        the Cedar schema keyway evaluates against (entities, actions, context)
  lint          Cedar's validation against the schema (FILE:LINE:COLUMN), policies that can never
                apply (no agent or grant of the config is their principal or resource), permits a
                forbid with no condition always overrides. Exit 1 when validation fails.
  check         a dry run of one request: allow or deny, the deciding policies, and the stage that
                refused (grant: no grant for the host or not one the agent holds; rules: a YAML rule;
                cedar: a Cedar forbid, or no permit). --body-size N: its declared body (default:
                none, 0 bytes). Exit 0 when allowed, 1 when refused.
  test          the audit log's requests judged again under a candidate (--policy: a .cedar file or
                a folder of them in place of the home's; default: the policy in effect), printing
                those whose verdict differs from the one recorded. Exit 1 when any differs.
  diff          the logged requests whose verdict changes from OLD to NEW, and the authority NEW
                adds (read from the policies, not the traffic). OLD and NEW: a .cedar file or a
                folder of them (with this config's YAML), or a config file (with its own files).

  --since T     from T: an ISO date, or a duration back from now (15m, 24h, 7d)
  --agent A     only this agent's requests
  --json        the report as JSON

The audit log keeps no query and no body: a line that a policy reading query_keys or body_size
(or a YAML max_body or MCP args rule) could apply to is reported as not replayable, never guessed.`;

export const policy: Command = {
  name: 'policy',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        cedar: { type: 'boolean' },
        agent: { type: 'string' },
        grant: { type: 'string' },
        'body-size': { type: 'string' },
        policy: { type: 'string' },
        since: { type: 'string' },
      },
      { show: 0, schema: 0, lint: 0, check: 2, test: 0, diff: 2 },
    );
    const action = args.positionals[0];
    if (action === undefined) throw usageError('expected show, schema, lint, check, test or diff (see --help)');
    if (action === 'schema') {
      io.out(policySchemaText());
      return 0;
    }
    const config = configFor(args, io);
    if (action === 'show') return show(args, io, config);
    if (action === 'lint') return lint(args, io, config);
    if (action === 'check') return check(args, io, config);
    if (action === 'test') return test(args, io, config);
    return diff(args, io, config);
  },
};

async function show(args: Args, io: CommandIO, config: Config): Promise<number> {
  const loaded = await loadCurrentPolicy(config);
  if (args.json) {
    printJson(io, { hash: loaded.hash, files: loaded.files, policies: loaded.policies.map((p) => ({ id: p.id, origin: p.origin })) });
    return 0;
  }
  if (args.flag('cedar')) {
    io.out('// compiled from the YAML rules (rules.ts judges them; annotations keep what Cedar cannot say)');
    io.out(compiledYaml(config));
    for (const p of loaded.policies.filter((p) => !p.origin.startsWith('yaml:'))) {
      io.out(`// ${p.origin}`);
      io.out(p.text);
    }
    return 0;
  }
  io.out(`policy ${loaded.hash}`);
  io.out(loaded.files.length === 0 ? 'Cedar files: none (the YAML rules alone decide)' : `Cedar files: ${loaded.files.join(', ')}`);
  for (const p of loaded.policies) io.out(`  ${p.id}  ${p.origin}`);
  return 0;
}

async function lint(args: Args, io: CommandIO, config: Config): Promise<number> {
  const { loaded, findings } = await lintHome(config);
  printLint(io, loaded, findings, args.json);
  return findings.some((f) => f.severity === 'error') ? 1 : 0;
}

async function check(args: Args, io: CommandIO, config: Config): Promise<number> {
  const [, method, url] = args.positionals;
  const agent = args.string('agent');
  if (agent === undefined) throw usageError('--agent A is required (the agent the request would come from)');
  if (method === undefined || url === undefined) throw usageError('expected METHOD URL (keyway policy check --agent A GET https://host/path)');

  const grant = args.string('grant');
  const bodyText = args.string('body-size');
  if (bodyText !== undefined && !/^\d{1,15}$/.test(bodyText)) throw usageError('--body-size: expected a number of bytes');
  const request = dryRunRequest({
    agent,
    grant,
    method,
    url,
    // No --body-size: a request with no body, as the proxy counts one (0), not one of unknown size.
    bodySize: bodyText === undefined ? 0 : Number(bodyText),
    sourceIp: '127.0.0.1',
    time: new Date(),
  });
  const loaded = await loadCurrentPolicy(config);
  const candidate = candidateOf(config, loaded, await storeOf(args, io));
  if (!candidate.agents.has(agent)) throw usageError(`--agent: no agent "${agent}" in the config or the store`);
  const verdict = judgeRequest(candidate, request);
  printCheck(io, request, verdict, loaded.hash, args.json);
  return verdict.outcome === 'deny' ? 1 : 0;
}

function filterOf(args: Args) {
  const since = parseAuditTime(args.string('since'), '--since');
  const agent = args.string('agent');
  return { ...(since === undefined ? {} : { since }), ...(agent === undefined ? {} : { agent }) };
}

/** `withScopes`: read each policy's head with Cedar's parser (it loads the engine): needed only where a Cedar file is in play. */
async function judged(config: Config, loaded: LoadedPolicy, stored: StoredRouting, withScopes = loaded.hasCedarFiles): Promise<Judged> {
  return { candidate: candidateOf(config, loaded, stored), scopes: withScopes ? await scopesOf(loaded.policies) : [] };
}

/**
 * A candidate's Cedar files: a .cedar file, or a folder holding at least one. One that does not
 * load (a parse error, a file others may write) is bad input: one line, exit 2.
 */
async function candidateAt(config: Config, path: string, label: string): Promise<LoadedPolicy> {
  const at = existing(path, label);
  if (statSync(at).isDirectory() ? !readdirSync(at).some((name) => name.endsWith('.cedar')) : !at.endsWith('.cedar'))
    throw usageError(`${label}: expected a .cedar file or a folder holding .cedar files: ${path}`);
  try {
    return await loadPolicyAt(config, at);
  } catch (err) {
    if (err instanceof KeywayError && err.code === 'config_invalid') throw usageError(`${label}: ${err.message}`);
    throw err;
  }
}

/**
 * The store's grants and agents (ids, domains, grant lists), read once and closed. A store that
 * cannot be opened here (no master key at hand) leaves the config's alone, said on stderr.
 */
async function storeOf(args: Args, io: CommandIO): Promise<StoredRouting> {
  let services: Awaited<ReturnType<typeof servicesFor>>;
  try {
    services = await servicesFor(args, io);
  } catch (err) {
    io.err(`keyway policy: warning: the store cannot be read (${(err as Error).message.split('\n')[0]}): only the config's grants and agents are judged`);
    return { grants: [], agents: new Map() };
  }
  try {
    return storedRouting(services.store);
  } finally {
    services.store.close();
    await services.store.end?.();
  }
}

async function test(args: Args, io: CommandIO, config: Config): Promise<number> {
  const path = args.string('policy');
  const filter = filterOf(args);
  const loaded = path === undefined ? await loadCurrentPolicy(config) : await candidateAt(config, path, '--policy');
  const report = await replayAgainstLog(await judged(config, loaded, await storeOf(args, io)), loggedRequests(config, io.env, filter));
  printTest(io, loaded, report, args.json);
  return report.differing.length > 0 ? 1 : 0;
}

async function diff(args: Args, io: CommandIO, config: Config): Promise<number> {
  const [, oldPath, newPath] = args.positionals;
  if (oldPath === undefined || newPath === undefined) throw usageError('expected OLD NEW (two .cedar files, folders of them, or config files)');
  const side = async (path: string, label: string) => {
    if (/\.(ya?ml|json)$/i.test(path)) {
      const other = loadConfig({ home: resolveHome(args.string('home'), io.env), file: existing(path, label) });
      return { config: other, loaded: await loadCurrentPolicy(other) };
    }
    return { config, loaded: await candidateAt(config, path, label) };
  };
  const before = await side(oldPath, 'OLD');
  const after = await side(newPath, 'NEW');
  const stored = await storeOf(args, io);
  // The heads are read on both sides when either has Cedar files: a YAML open permit on one side is what a Cedar permit on the other is measured against.
  const cedar = before.loaded.hasCedarFiles || after.loaded.hasCedarFiles;
  const [previous, next] = [await judged(before.config, before.loaded, stored, cedar), await judged(after.config, after.loaded, stored, cedar)];
  const report = await replayBetween(previous, next, loggedRequests(config, io.env, filterOf(args)));
  const authority = authorityAdded({ config: before.config, scopes: previous.scopes }, { config: after.config, scopes: next.scopes });
  printDiff(io, { before: before.loaded, after: after.loaded, report, authority }, args.json);
  return 0;
}

function existing(path: string, label: string): string {
  const at = resolve(path);
  if (!existsSync(at)) throw usageError(`${label}: no file or folder at ${path}`);
  return at;
}
