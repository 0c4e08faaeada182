import { readAdminToken } from '../../admin/token.ts';
import { resolveHome, runningProxyFiles } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson } from '../io.ts';
import { callAdmin, lookUpProxy } from '../running-status.ts';
import { commandLineIsKeyway } from './stop.ts';

// The proxy validates the config in a child process (up to 30 s under load), then answers.
const RELOAD_TIMEOUT_MS = 40_000;

type ReloadAnswer = { reloaded: true; changed: string[]; needs_restart: string[] } | { reloaded: false; error: { code: string; message: string } };

export const reload: Command = {
  name: 'reload',
  usage: `keyway reload [--json] [--home DIR]

Makes the proxy running for this home (data/proxy.json) re-read its config file, through its admin
API (POST /api/reload with data/admin.token). Changes apply to new requests; no connection is
dropped. Prints the keys that changed, and those that only a restart applies (listen addresses,
admin, audit, oauth, proxy.upstream_ca and the server-side timeouts).
A config that does not load is refused with the reason, and the running one stays: exit 1.
With the admin API off, it sends SIGHUP instead (the result is then in the proxy's log and the audit
log). Exits 1 with one line when no proxy runs.`,
  async run(argv, io) {
    const args = parse(argv);
    const home = resolveHome(args.string('home'), io.env);
    const found = await lookUpProxy(home, io.env);
    if (found.state !== 'running') {
      if (args.json) printJson(io, { reloaded: false, running: false, home });
      const stale = found.state === 'stale' ? ` (removed data/proxy.json left by pid ${found.pid}, which is gone)` : '';
      io.err(`keyway reload: no proxy is running for home ${home}${stale}`);
      return 1;
    }
    const { proxy, live, why } = found;
    if (proxy.admin === null) return signalReload(proxy.pid, args.json, io);
    if (live === undefined) {
      io.err(`keyway reload: cannot reach pid ${proxy.pid}: ${why}`);
      return 1;
    }
    const token = await readAdminToken(runningProxyFiles(home).adminToken, io.env);
    let answer: { status: number; body: unknown };
    try {
      answer = await callAdmin(proxy.admin, token, 'POST', '/api/reload', RELOAD_TIMEOUT_MS);
    } catch (err) {
      io.err(`keyway reload: the admin API of pid ${proxy.pid} did not answer: ${(err as Error).message}`);
      return 1;
    }
    const body = answer.body as ReloadAnswer;
    if (args.json) printJson(io, { ...body, pid: proxy.pid });
    if (answer.status === 200 && body.reloaded) {
      if (!args.json) io.out(describeChange(proxy.pid, body));
      return 0;
    }
    const reason = !body.reloaded && typeof body.error?.message === 'string' ? body.error.message : `status ${answer.status}`;
    io.err(`keyway reload: the config was refused; pid ${proxy.pid} keeps the running one: ${reason}`);
    return 1;
  },
};

function describeChange(pid: number, body: { changed: string[]; needs_restart: string[] }): string {
  if (body.changed.length === 0) return `keyway (pid ${pid}) re-read its config: nothing changed`;
  const restart = body.needs_restart.length === 0 ? '' : `; a restart applies ${body.needs_restart.join(', ')}`;
  return `keyway (pid ${pid}) reloaded its config: changed ${body.changed.join(', ')}${restart}`;
}

/** admin.enabled: false: the signal is the only way in; its outcome is in the proxy's log and audit. */
function signalReload(pid: number, json: boolean, io: Parameters<Command['run']>[1]): number {
  if (!commandLineIsKeyway(pid)) {
    io.err(`keyway reload: cannot confirm that pid ${pid} is keyway (its admin API is off); send it SIGHUP yourself with \`kill -HUP ${pid}\` if it is`);
    return 1;
  }
  process.kill(pid, 'SIGHUP');
  if (json) printJson(io, { signalled: true, pid });
  else io.out(`sent SIGHUP to keyway (pid ${pid}); its log and \`keyway audit query --decision admin\` say whether the config was taken`);
  return 0;
}
