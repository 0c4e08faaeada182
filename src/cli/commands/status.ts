import { resolveHome } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson } from '../io.ts';
import { reachable } from '../proxy-url.ts';
import { formatUptime, lookUpProxy } from '../running-status.ts';

export const status: Command = {
  name: 'status',
  usage: `keyway status [--json] [--home DIR]

Says whether a proxy is running for this home (data/proxy.json names a live process): its pid,
proxy and admin addresses, uptime, grants and agents counted, requests served since it started
(and how many were refused), and whether its audit log is ok or failing. The counts come from the
admin API (with data/admin.token); without it, only what data/proxy.json says is shown.
Exits 1 with one line when no proxy runs; a data/proxy.json left by a process that is gone is removed.`,
  async run(argv, io) {
    const args = parse(argv);
    const home = resolveHome(args.string('home'), io.env);
    const found = await lookUpProxy(home, io.env);
    if (found.state !== 'running') {
      if (args.json) printJson(io, { running: false, home });
      const stale = found.state === 'stale' ? ` (removed data/proxy.json left by pid ${found.pid}, which is gone)` : '';
      io.err(`keyway status: no proxy is running for home ${home}${stale}; start one with \`keyway start\``);
      return 1;
    }
    const { proxy, live, why } = found;
    const startedMs = Date.parse(proxy.started_at);
    const uptime = live?.uptime_s ?? (Number.isFinite(startedMs) ? Math.max(0, Math.round((Date.now() - startedMs) / 1000)) : null);
    const result = {
      running: true,
      home,
      pid: proxy.pid,
      proxy: reachable(proxy.proxy),
      admin: proxy.admin === null ? null : reachable(proxy.admin),
      started_at: proxy.started_at ?? null,
      uptime_s: uptime,
      grants: live?.grants ?? null,
      agents: live?.agents ?? null,
      requests: live?.requests ?? null,
      refused: live?.refused ?? null,
      audit: live?.audit ?? null,
      ...(why === undefined ? {} : { live_counts_unavailable: why }),
    };
    if (args.json) {
      printJson(io, result);
      return 0;
    }
    io.out(`keyway is running (pid ${proxy.pid}${uptime === null ? '' : `, up ${formatUptime(uptime)}`})`);
    io.out(`  home      ${home}`);
    io.out(`  proxy     http://${result.proxy}`);
    io.out(`  admin     ${result.admin === null ? 'off' : `http://${result.admin}`}`);
    if (live) {
      io.out(`  grants    ${live.grants}   agents ${live.agents}`);
      io.out(`  requests  ${live.requests} served, ${live.refused} refused`);
      io.out(`  audit     ${live.audit === 'ok' ? 'ok' : 'failing: requests that would inject are refused (audit_unavailable)'}`);
    } else {
      io.out(`  counts    unavailable: ${why}`);
    }
    return 0;
  },
};
