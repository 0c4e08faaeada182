import { resolveHome } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { type CommandIO, printJson } from '../io.ts';
import { reachable } from '../proxy-url.ts';
import type { WorkerStatus } from '../../admin/deps.ts';
import type { ExportView } from '../../audit-export/status-view.ts';
import { type FoundProxy, formatUptime, goneNote, lookUpProxies } from '../running-status.ts';

export const status: Command = {
  name: 'status',
  usage: `keyway status [--json] [--home DIR]

Says which keyways are running for this home (each records itself in data/running; data/proxy.json
names the one clients are pointed at): for each, its pid, proxy and admin addresses, uptime, grants
and agents counted, requests served since it started (and how many were refused), and whether its
audit log is ok or failing, its worker processes (proxy.workers) with their pids and counts, and
each audit.export target: its receiver's host, lines behind, last delivery and last error. A keyway serving \`keyway run --contain\` is listed too. The counts come
from each admin API (with data/admin.token); without it, only what the record says is shown.
Exits 1 with one line when none runs; records left by processes that are gone are removed.`,
  async run(argv, io) {
    const args = parse(argv);
    const home = resolveHome(args.string('home'), io.env);
    const { running, gone } = await lookUpProxies(home, io.env);
    if (running.length === 0) {
      if (args.json) printJson(io, { running: false, home });
      io.err(`keyway status: no proxy is running for home ${home}${goneNote(gone)}; start one with \`keyway start\``);
      return 1;
    }
    const described = running.map(describe);
    if (args.json) {
      // The first keyway's fields at the top (what a single one printed before), every one in `keyways`.
      printJson(io, { running: true, home, ...described[0], keyways: described });
      return 0;
    }
    if (running.length > 1) io.out(`${running.length} keyways are running for home ${home} (\`keyway stop --pid PID\` stops one, --all every one)`);
    for (const found of running) printOne(io, found, running.length === 1 ? home : undefined);
    return 0;
  },
};

function workerLine(w: WorkerStatus): string {
  const counts = w.requests === null ? 'not answering' : `${w.connections} connections, ${w.requests} requests`;
  const restarts = w.restarts === 0 ? '' : `, replaced ${w.restarts} time${w.restarts === 1 ? '' : 's'}`;
  const audit = w.audit === 'failing' ? ', audit failing' : '';
  return `#${w.index}  pid ${w.pid}  ${counts}${restarts}${audit}`;
}

/** One audit.export target: where (host only), how far behind, when it last delivered, and its last failure. */
function exportLine(v: ExportView): string {
  const success = v.last_success === null ? 'nothing delivered since start' : `last sent ${v.last_success}`;
  const failing = v.failing_since === null ? '' : `, failing since ${v.failing_since}`;
  const error = v.last_error === null ? '' : `, last error ${v.last_error} at ${v.last_error_at}`;
  const missed = v.missed === 0 ? '' : `, ${v.missed} missed (pruned before sent)`;
  return `${v.target}  ${v.format} to ${v.host}  ${v.behind} lines behind, ${success}${failing}${error}${missed}`;
}

function uptimeOf({ proxy, live }: FoundProxy): number | null {
  const startedMs = Date.parse(proxy.started_at);
  return live?.uptime_s ?? (Number.isFinite(startedMs) ? Math.max(0, Math.round((Date.now() - startedMs) / 1000)) : null);
}

function describe(found: FoundProxy) {
  const { proxy, live, why } = found;
  return {
    pid: proxy.pid,
    role: proxy.role ?? 'start',
    proxy: reachable(proxy.proxy),
    admin: proxy.admin === null ? null : reachable(proxy.admin),
    started_at: proxy.started_at ?? null,
    uptime_s: uptimeOf(found),
    grants: live?.grants ?? null,
    agents: live?.agents ?? null,
    requests: live?.requests ?? null,
    refused: live?.refused ?? null,
    audit: live?.audit ?? null,
    ...(live?.workers === undefined ? {} : { workers: live.workers }),
    ...(live?.audit_export === undefined ? {} : { audit_export: live.audit_export }),
    ...(why === undefined ? {} : { live_counts_unavailable: why }),
  };
}

function printOne(io: CommandIO, found: FoundProxy, home: string | undefined): void {
  const { proxy, live, why } = found;
  const uptime = uptimeOf(found);
  const what = proxy.role === 'contain' ? 'keyway run --contain is serving its command' : 'keyway is running';
  io.out(`${what} (pid ${proxy.pid}${uptime === null ? '' : `, up ${formatUptime(uptime)}`})`);
  if (home !== undefined) io.out(`  home      ${home}`);
  io.out(`  proxy     http://${reachable(proxy.proxy)}`);
  io.out(`  admin     ${proxy.admin === null ? 'off' : `http://${reachable(proxy.admin)}`}`);
  if (live) {
    io.out(`  grants    ${live.grants}   agents ${live.agents}`);
    io.out(`  served    ${live.requests} requests, ${live.refused} of them refused`);
    io.out(`  audit     ${live.audit === 'ok' ? 'ok' : 'failing: requests that would inject are refused (audit_unavailable)'}`);
    if (live.workers !== undefined) {
      io.out(`  workers   ${live.workers.length} (proxy.workers)`);
      for (const w of live.workers) io.out(`    ${workerLine(w)}`);
    }
    if (live.audit_export !== undefined && live.audit_export.length > 0) {
      io.out(`  export    ${live.audit_export.length} target${live.audit_export.length === 1 ? '' : 's'} (audit.export)`);
      for (const view of live.audit_export) io.out(`    ${exportLine(view)}`);
    }
  } else {
    io.out(`  counts    unavailable: ${why}`);
  }
}
