// `keyway doctor`: checks, one line each with what to fix, that keyway can work for the clients on
// this machine: its CA files, the running proxy and admin API, keyway's own answer through the proxy,
// and then curl, Node, Python (requests) and git, whichever are installed, each run in a clean
// environment holding exactly the variables of `keyway env`.
//
// The test request. A client trusting keyway's CA can only be shown on a host keyway intercepts.
// doctor must not write a grant (it changes nothing) and cannot use a server of its own on loopback
// (the egress guard refuses loopback destinations), so the proxy answers one name itself:
// `CONNECT keyway.internal:443` is always intercepted (after the usual agent check, whatever the
// grants, proxy.unmatched or egress rules, and never resolved or dialled), with a leaf from keyway's
// CA, and inside it `GET /healthz` answers 200 {"ok":true,"service":"keyway",...}; any other path
// answers 404. `.internal` is reserved for private use, so the name never reaches a real host, and a
// client that bypasses the proxy fails to resolve it instead of passing by accident.
//
// `--url https://HOST/PATH` tests against a host a grant covers instead (this sends one request per
// client to it, with the grant's credential). doctor then first checks that keyway intercepts HOST
// with its CA, and after each client that keyway's audit log shows the request, so a client that
// went around the proxy cannot pass.

import { withRunningSecrets } from '../../running-secrets.ts';
import { identityTokenCredentials } from '../../identity-token.ts';
import { parseDuration, parseListen, type Config, type ListenAddress } from '../../../config/index.ts';
import { SELF_CHECK_HOST, SELF_CHECK_PATH } from '../../../proxy/self-check.ts';
import { parse } from '../../args.ts';
import { agentKeyFor } from '../../client-env.ts';
import type { Command } from '../../command.ts';
import { configFor } from '../../context.ts';
import { printJson, usageError } from '../../io.ts';
import { proxyAddress } from '../../proxy-url.ts';
import { runChecks } from './checks.ts';
import { runProfileChecks } from './checks-profile.ts';
import type { CheckResult, Context, Target } from './context.ts';

export type { CheckResult, CheckStatus } from './context.ts';

export const doctor: Command = {
  name: 'doctor',
  usage: `keyway doctor [--agent ID | --identity-token FILE] [--proxy HOST:PORT] [--admin URL] [--url URL] [--timeout D] [--json]
keyway doctor --profile NAME [--agent ID] [--json]

Prints one line per check, ok or FAIL with what to fix (skip when a client is not installed or an
earlier check failed), and exits 0 only if nothing failed:
  - certs/ca.pem parses and is a current CA; certs/ca-key.pem is its key, mode 0600; certs/bundle.pem
    holds the CA
  - the proxy answers where a running keyway says it listens (data/proxy.json), else on proxy.listen
    (or --proxy); the admin /healthz answers (or --admin), when admin.enabled; this shell's
    HTTPS_PROXY (and the other proxy variables), when set, points at that proxy (WARN naming the
    right URL when it points at the admin port, at nothing, or at another program)
  - each identity issuer's keys can be fetched as the proxy fetches them (config identities:); the
    egress proxy (egress.proxy) answers a CONNECT to a host a grant covers (or --url's); the newest
    audit checkpoint is signed by this home's key (when the master key is at hand); each grant's
    secret source item (secret: {from: …}) is fetched and read as the grant's secret, and each
    grant's secret command (secret: {cmd: …}) is run as keyway runs it (its timeout, no shell): the
    line says whether it printed a value and how long it took, or why not, never the value
  - every model that answered through keyway in the last 30 days has a price (WARN naming those
    without one, counted in tokens only, with the fix: an entry under pricing:)
  - the Cedar policy files validate against keyway's schema (keyway policy lint: FAIL on an
    error, WARN on a policy that can never apply or that a forbid always overrides)
  - no grant's credential was refused upstream (401) at its last answer, and no login grant waits
    for its login (WARN naming each, with what fills it: keyway connect AGENT --login)
  - keyway answers through the proxy with a certificate from its CA: a CONNECT to ${SELF_CHECK_HOST}:443,
    which keyway answers itself (GET ${SELF_CHECK_PATH}), so nothing leaves the machine
  - curl, node (this one), python3 with requests, and git, each run in a clean environment (PATH, HOME
    and exactly the variables of \`keyway env\`; git without your ~/.gitconfig) reach that test request
    and trust keyway's CA
  - the node on your PATH (leaving out node_modules/.bin, which npm puts first) is Node 24 or later:
    an older one ignores HTTPS_PROXY and goes around keyway (WARN, with the fix; not a failure)

--agent ID     go through the proxy as this agent (key from KEYWAY_AGENT_KEY or the config)
--proxy H:P    the proxy to check, when it runs on another home or machine
--admin URL    the admin API to check, likewise (e.g. http://127.0.0.1:8788)
--url URL      test against https://HOST/PATH, a host a grant covers, instead of ${SELF_CHECK_HOST}: one
               request per client is sent there, with the grant's credential; each must show up in
               keyway's audit log
--timeout D    per client (default 15s)
--profile NAME check a coding agent's profile instead (keyway profiles list): it parses; its
               command is on PATH; its state can be made or is writable; a grant the agent (--agent,
               else any) may use covers its model host (else: keyway connect NAME; FAIL too when
               the only one is a login grant waiting for its login); the CA variables it reads
               are set by keyway run to files holding keyway's CA; each host it calls gets
               through keyway's policy (refused where no grant covers it and proxy.unmatched is deny)`,
  async run(argv, io) {
    const args = parse(argv, {
      agent: { type: 'string' },
      'identity-token': { type: 'string' },
      proxy: { type: 'string' },
      admin: { type: 'string' },
      url: { type: 'string' },
      timeout: { type: 'string' },
      profile: { type: 'string' },
    });
    const config = configFor(args, io);
    const timeoutMs = parseDuration(args.string('timeout') ?? '15s');
    if (timeoutMs === undefined || timeoutMs <= 0) throw usageError('--timeout: expected a duration such as 15s');
    const agentId = args.string('agent');
    const profile = args.string('profile');
    for (const option of ['proxy', 'admin', 'url', 'identity-token']) {
      if (profile !== undefined && args.string(option) !== undefined) throw usageError(`--${option} is not for --profile, which checks the profile alone`);
    }
    const ctx: Context = {
      config,
      // The config's env: secrets this shell lacks, from the running keyway (for its checks only).
      io: { ...io, env: await withRunningSecrets(config, io.env) },
      args,
      timeoutMs,
      // --profile needs the agent's grants, not its key (it sends nothing through the proxy).
      agent:
        identityTokenCredentials(args, config) ??
        (agentId === undefined || profile !== undefined ? undefined : { id: agentId, key: agentKeyFor(config, agentId, io.env) }),
      proxy: proxyFromArgs(args.string('proxy'), config),
      target: targetFromArgs(args.string('url')),
      results: [],
    };
    const results = profile === undefined ? await runChecks(ctx) : await runProfileChecks(ctx, profile);
    const ok = results.every((r) => r.status !== 'fail');
    if (args.json) printJson(io, { ok, checks: results });
    else for (const r of results) io.out(formatResult(r));
    if (!ok && !args.json) io.err(`keyway doctor: ${results.filter((r) => r.status === 'fail').length} check(s) failed`);
    return ok ? 0 : 1;
  },
};

function formatResult(r: CheckResult): string {
  const mark = r.status === 'ok' ? 'ok  ' : r.status === 'fail' ? 'FAIL' : r.status === 'warn' ? 'WARN' : 'skip';
  return `${mark}  ${r.check}: ${r.detail}${r.fix === undefined ? '' : ` -> ${r.fix}`}`;
}

function proxyFromArgs(text: string | undefined, config: Config): ListenAddress {
  const raw = text ?? proxyAddress(config);
  // Accept HOST:PORT or a proxy URL (its credentials, if any, are ignored: --agent gives them).
  let authority = raw;
  if (/^[a-z]+:\/\//i.test(raw)) {
    try {
      const url = new URL(raw);
      authority = `${url.hostname}:${url.port || '80'}`;
    } catch {
      throw usageError(`--proxy: expected HOST:PORT or http://HOST:PORT, got "${raw}"`);
    }
  }
  const parsed = parseListen(authority);
  if (!parsed || parsed.port === 0) throw usageError(`the proxy address "${raw}" has no usable port: pass --proxy HOST:PORT`);
  return parsed;
}

function targetFromArgs(text: string | undefined): Target {
  if (text === undefined) {
    const url = new URL(`https://${SELF_CHECK_HOST}${SELF_CHECK_PATH}`);
    return { url, host: SELF_CHECK_HOST, port: 443, selfCheck: true };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--url: expected https://HOST/PATH, got "${text}"`);
  }
  if (url.protocol !== 'https:') throw usageError("--url: expected an https:// URL (doctor checks that clients trust keyway's CA)");
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { url, host, port: url.port === '' ? 443 : Number(url.port), selfCheck: false };
}
