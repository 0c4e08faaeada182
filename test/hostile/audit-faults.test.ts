// Audit faults: the audit log stops being writable under a running `keyway start` (a child process,
// so a file-size limit can be put on it alone). For each fault: requests for a granted host get 503
// audit_unavailable and the upstream sees no credential; /readyz says the audit is unavailable while
// /healthz (liveness) stays 200; once the fault clears keyway recovers by itself (measured with no
// traffic, from /readyz, then
// with a request); every credential the upstream ever saw has its audit line; `audit verify` passes.
//
// Faults that work as root (tests run as root, which ignores permission bits, and have no chattr):
//   file_replaced_by_directory  logs/audit.jsonl swapped with a directory
//   folder_replaced_by_file     logs/ swapped with a plain file (a folder merely removed is made
//                               again by keyway at once, so it is no lasting fault)
//   disk_full_rlimit_fsize      `prlimit --pid` sets the child's RLIMIT_FSIZE to the log's size: any
//                               append fails with EFBIG (keyway ignores SIGXFSZ), like a disk filled
//                               all at once by someone else between two of keyway's refreshes
//   disk_nearly_full_rlimit_fsize  the limit 256 KiB past the log's end: room for lines, but under
//                               the reserve keyway keeps (src/audit/file/room.ts), like a disk filling up.
//                               keyway must refuse before any append fails: every credential that
//                               reached the upstream has its line on disk while the fault still holds
import { exchangePaths } from '../helpers/exchange.ts';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, onePerRequest, runCli, startProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { report, scale } from './scale.ts';
import { slack } from '../helpers/load.ts';

const HOST = 'api.example.test';
const ROUNDS = scale(1, 20);
const REQUESTS_IN_FAULT = scale(15, 200);
const RECOVERY_LIMIT_MS = 5_000;
const NEARLY_FULL_ROOM = 256 * 1024;

interface Fault {
  name: string;
  make(): void;
  /** Returns when (epoch ms) the fault cleared. */
  clear(): number;
}

describe('audit faults', () => {
  let upstream: TestUpstream;
  let home: string;
  let env: Record<string, string>;
  let child: ChildProxy;
  let adminPort: number;
  let dispatcher: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    // A home with the test config and one grant, then the proxy runs as its own process on it.
    const prepared = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: [HOST], secret: CANARY }] });
    await prepared.stop();
    home = prepared.home;
    env = cleanEnv({ KEYWAY_MASTER_KEY: prepared.env['KEYWAY_MASTER_KEY']! });
    child = await startChildProxy({ home, env });
    adminPort = (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } }).admin.port;
    dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: [readFileSync(prepared.caPath, 'utf8')] } });
  });

  afterAll(async () => {
    await dispatcher?.close();
    await child?.stop();
    await upstream?.close();
  });

  const credentialsSeen = (): number => upstream.seen.filter((r) => r.headers.authorization === `Bearer ${CANARY}`).length;

  async function get(): Promise<{ status: number; code: string | undefined }> {
    const res = await request(`https://${HOST}:${upstream.port}/echo`, { dispatcher, signal: AbortSignal.timeout(slack(5_000)) });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      code: res.statusCode === 200 ? undefined : ((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? text.slice(0, 80)),
    };
  }

  /** /readyz's status and its audit check; /healthz must say 200 (alive) through every fault. */
  async function healthz(): Promise<{ status: number; audit: string }> {
    const live = await request(`http://127.0.0.1:${adminPort}/healthz`, { signal: AbortSignal.timeout(slack(5_000)) });
    const liveness = (await live.body.json()) as { audit: string };
    const res = await request(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(slack(5_000)) });
    const body = (await res.body.json()) as { checks: { audit: string } };
    expect(live.statusCode, '/healthz is liveness: 200 while keyway answers').toBe(200);
    return { status: res.statusCode, audit: `${body.checks.audit === 'ok' ? 'ok' : 'unavailable'}/${liveness.audit}` };
  }

  /** Milliseconds until `check` holds, polling every 5 ms; Infinity past RECOVERY_LIMIT_MS. */
  async function timeUntil(check: () => Promise<boolean>, started = Date.now()): Promise<number> {
    while (Date.now() - started < RECOVERY_LIMIT_MS) {
      if (await check()) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 5));
    }
    return Number.POSITIVE_INFINITY;
  }

  const injectLinesOnDisk = (): number =>
    readFileSync(auditFile(), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"decision":"inject"') && l.includes('"grant":"github"')).length;

  const logs = () => join(home, 'logs');
  const auditFile = () => join(home, 'logs', 'audit.jsonl');
  const prlimit = (value: string) => execFileSync('prlimit', ['--pid', String(child.child.pid), `--fsize=${value}`]);

  // Both file-system faults swap two names in one step (test/helpers/exchange.ts says why).
  const exchange = exchangePaths;

  const faults: Fault[] = [
    {
      name: 'file_replaced_by_directory',
      make: () => {
        mkdirSync(`${auditFile()}.swap`, { recursive: true });
        void exchange(auditFile(), `${auditFile()}.swap`);
      },
      clear: () => exchange(auditFile(), `${auditFile()}.swap`),
    },
    {
      name: 'folder_replaced_by_file',
      make: () => {
        writeFileSync(`${logs()}.swap`, '');
        void exchange(logs(), `${logs()}.swap`);
      },
      clear: () => exchange(logs(), `${logs()}.swap`),
    },
    {
      name: 'disk_nearly_full_rlimit_fsize',
      make: () => void prlimit(`${statSync(auditFile()).size + NEARLY_FULL_ROOM}:unlimited`),
      clear: () => {
        const before = Date.now();
        prlimit('unlimited:unlimited');
        return before;
      },
    },
    {
      name: 'disk_full_rlimit_fsize',
      // Soft limit at the log's current size: the next append passes it. The hard limit stays open
      // so the test can lift the soft one again.
      make: () => void prlimit(`${statSync(auditFile()).size}:unlimited`),
      // Counted from before prlimit starts: an upper bound.
      clear: () => {
        const before = Date.now();
        prlimit('unlimited:unlimited');
        return before;
      },
    },
  ];

  it('refuses with 503 audit_unavailable, injects nothing unaudited, and recovers by itself', async () => {
    const figures: Record<string, unknown> = { rounds: ROUNDS, requests_in_fault: REQUESTS_IN_FAULT };
    let requests = 0;
    const outcomes: Array<{
      fault: string;
      healthzDuringFault: string;
      recoveryMax: number;
      otherAnswers: number;
      injectedDuringFault: number;
      unauditedAtFaultEnd: number;
    }> = [];
    for (const fault of faults) {
      const recoveryHealthz: number[] = [];
      const recoveryRequest: number[] = [];
      let refused = 0;
      let otherAnswers = 0;
      let injectedDuringFault = 0;
      let unauditedAtFaultEnd = 0;
      let healthzDuringFault = '';
      for (let round = 0; round < ROUNDS; round++) {
        // Healthy first, and every line of it on disk (lines land up to ~10 ms after the answer).
        expect((await get()).status).toBe(200);
        requests += 1;
        await new Promise((r) => setTimeout(r, 50));
        const seenBefore = credentialsSeen();
        let cleared = 0;
        fault.make();
        try {
          for (let i = 0; i < REQUESTS_IN_FAULT; i++) {
            const res = await get();
            requests += 1;
            if (res.status === 503 && res.code === 'audit_unavailable') refused += 1;
            else otherAnswers += 1;
          }
          const health = await healthz();
          healthzDuringFault = `${health.status} ${health.audit}`;
          injectedDuringFault += credentialsSeen() - seenBefore;
          // Before the fault clears: does every credential the upstream saw have its line on disk?
          // (A line that failed is kept in memory and lands only after recovery.)
          if (fault.name.startsWith('disk_')) {
            await new Promise((r) => setTimeout(r, 50));
            unauditedAtFaultEnd += Math.max(0, credentialsSeen() - injectLinesOnDisk());
          }
        } finally {
          cleared = fault.clear();
        }
        // Recovery with no traffic at all (the writer's own probe), then a request goes through.
        recoveryHealthz.push(await timeUntil(async () => (await healthz()).status === 200, cleared));
        recoveryRequest.push(
          await timeUntil(async () => {
            requests += 1;
            return (await get()).status === 200;
          }),
        );
      }
      const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
      const p50 = (xs: number[]) => Math.round(sorted(xs)[Math.floor(xs.length / 2)]!);
      figures[fault.name] = {
        refused_503: refused,
        other_answers: otherAnswers,
        credentials_upstream_during_fault: injectedDuringFault,
        credentials_without_line_at_fault_end: fault.name.startsWith('disk_') ? unauditedAtFaultEnd : 'n/a',
        healthz_during_fault: healthzDuringFault,
        recovery_healthz_ms: { p50: p50(recoveryHealthz), max: Math.round(Math.max(...recoveryHealthz)) },
        recovery_request_ms: { p50: p50(recoveryRequest), max: Math.round(Math.max(...recoveryRequest)) },
      };
      outcomes.push({
        fault: fault.name,
        healthzDuringFault,
        recoveryMax: Math.max(...recoveryHealthz),
        otherAnswers,
        injectedDuringFault,
        unauditedAtFaultEnd,
      });
    }
    report('audit-faults', figures);
    for (const o of outcomes) {
      expect(o.healthzDuringFault, o.fault).toBe('503 unavailable/unavailable');
      expect(o.recoveryMax, o.fault).toBeLessThan(1_000);
      // The only answers that are not 503: requests that passed the health gate before the fault
      // showed. A replaced file or folder is seen by the next batch, which checks the log's path
      // before it writes, and without traffic within 100 ms (watch.ts). A disk filling up is seen at
      // keyway's next look at the room left (every 100 ms, and before every batch): the requests let
      // through until then had room for their lines, and every one of them is on disk before the
      // fault clears. A disk filled all at once (the limit dropped to the log's size) cannot be seen
      // ahead: requests pass until the next look or the first failed append, up to one batch
      // (~10-20 ms); their lines are kept in memory and written on recovery.
      const allowed = o.fault === 'disk_full_rlimit_fsize' ? 10 * ROUNDS : o.fault === 'disk_nearly_full_rlimit_fsize' ? REQUESTS_IN_FAULT * ROUNDS : ROUNDS;
      expect(o.otherAnswers, o.fault).toBeLessThanOrEqual(allowed);
      if (o.fault === 'disk_nearly_full_rlimit_fsize') expect(o.unauditedAtFaultEnd, o.fault).toBe(0);
      expect(o.injectedDuringFault, o.fault).toBe(o.otherAnswers);
    }

    // Every credential the upstream saw has its audit line (kept in memory through the fault), and
    // the chain verifies end to end.
    await new Promise((r) => setTimeout(r, 300));
    // One entry per request (a write-ahead line and its outcome are one request).
    const lines = onePerRequest(readFileSync(auditFile(), 'utf8'));
    const injectLines = lines.filter((l) => l['decision'] === 'inject' && l['grant'] === 'github').length;
    figures['requests'] = requests;
    figures['credentials_upstream'] = credentialsSeen();
    figures['inject_lines'] = injectLines;
    figures['unaudited_injections'] = credentialsSeen() - injectLines;
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    figures['verify_exit'] = verify.code;
    report('audit-faults', {
      requests,
      credentials_upstream: figures['credentials_upstream'],
      unaudited_injections: figures['unaudited_injections'],
      verify_exit: verify.code,
    });
    expect(credentialsSeen() - injectLines).toBe(0);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(lines.some((l) => JSON.stringify(l).includes(CANARY))).toBe(false);
  });
});
