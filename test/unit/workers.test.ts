import { describe, expect, it } from 'vitest';
import { workerCount } from '../../src/app/workers/count.ts';
import type { FromWorker } from '../../src/app/workers/messages.ts';
import { mergeMinutes } from '../../src/app/workers/primary.ts';
import { checkReusePort } from '../../src/app/workers/reuse-port.ts';
import { answerRates, RemoteRates } from '../../src/app/workers/shared-rates.ts';
import type { MinuteCount } from '../../src/observability/counting-audit.ts';
import { limitsSchema } from '../../src/config/limits.ts';
import { type LimitScope, RateLimiter } from '../../src/policy/rate-limits.ts';

const scope = (key: string, rate: string | undefined, burst?: number): LimitScope => ({
  kind: 'agent',
  name: `agent ${key}`,
  key,
  limits: limitsSchema.parse({ ...(rate === undefined ? {} : { rate }), ...(burst === undefined ? {} : { burst }) }),
});

/** Two workers' RemoteRates wired to one primary's RateLimiter, as the IPC channel would (JSON in between). */
function wired(): { workers: RemoteRates[]; primary: RateLimiter } {
  const primary = new RateLimiter();
  const workers: RemoteRates[] = [];
  for (let i = 0; i < 2; i++) {
    const worker: RemoteRates = new RemoteRates((message: FromWorker) => {
      const sent = JSON.parse(JSON.stringify(message)) as FromWorker;
      if (sent.t !== 'rates') return true;
      const verdict = JSON.parse(JSON.stringify(answerRates(primary, sent)));
      queueMicrotask(() => worker.answer(verdict));
      return true;
    });
    workers.push(worker);
  }
  return { workers, primary };
}

describe('proxy.workers: rates counted in the primary', () => {
  it('two workers share one bucket: a burst of 4 passes 4 requests in all, not 4 each', async () => {
    const { workers } = wired();
    const bot = scope('bot', '60/min', 4);
    const t0 = 1_000_000;
    const verdicts = await Promise.all(Array.from({ length: 10 }, (_, i) => workers[i % 2]!.take([bot], t0)));
    expect(verdicts.filter((v) => v.ok)).toHaveLength(4);
  });

  it('a refusal names the worker-side scope that ran out, with its rate and the wait', async () => {
    const { workers } = wired();
    const open = scope('open', undefined);
    const grant = scope('grant', '1/h', 1);
    const t0 = 5_000_000;
    expect((await workers[0]!.take([open, grant], t0)).ok).toBe(true);
    const refused = await workers[1]!.take([open, grant], t0 + 1_000);
    expect(refused).toMatchObject({ ok: false, scope: { key: 'grant', name: 'agent grant' }, rate: { text: '1/h' } });
    expect(refused.ok === false && refused.retryAfterMs).toBe(3_600_000 - 1_000);
  });

  it('a bucket the primary found empty is refused in the worker until its next token, without asking; then asked again', async () => {
    const asked: number[] = [];
    const primary = new RateLimiter();
    const worker: RemoteRates = new RemoteRates((message: FromWorker) => {
      if (message.t !== 'rates') return true;
      asked.push(message.nowMs);
      const verdict = answerRates(primary, message);
      queueMicrotask(() => worker.answer(verdict));
      return true;
    });
    const bot = scope('bot', '60/min', 1);
    const t0 = 9_000_000;
    expect((await worker.take([bot], t0)).ok).toBe(true);
    const refused = await worker.take([bot], t0 + 100);
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 900 });
    expect(asked).toEqual([t0, t0 + 100]);
    // Until the next token the worker answers itself, the same way, with what is left of the wait.
    for (const at of [t0 + 200, t0 + 500, t0 + 999]) {
      const again = worker.take([bot], at);
      expect(again instanceof Promise).toBe(false);
      expect(again).toMatchObject({ ok: false, scope: { key: 'bot' }, retryAfterMs: t0 + 1000 - at });
      // The primary's bucket says the same, to the millisecond it rounds up to (a refused take costs it nothing).
      const own = primary.take([bot], at);
      expect(own.ok).toBe(false);
      expect(Math.abs((own.ok ? 0 : own.retryAfterMs) - (t0 + 1000 - at))).toBeLessThanOrEqual(1);
    }
    // A reload that changes the rate is another bucket: asked, not refused from memory.
    expect((await worker.take([scope('bot', '120/min', 1)], t0 + 300)).ok).toBe(true);
    asked.pop();
    expect(asked).toHaveLength(2);
    // The next token comes at t0 + 1000: asked again then, and granted.
    expect((await worker.take([bot], t0 + 1000)).ok).toBe(true);
    expect(asked).toEqual([t0, t0 + 100, t0 + 1000]);
  });

  it('a primary that is gone refuses every question, those waiting and those after', async () => {
    const silent = new RemoteRates(() => true);
    const waiting = silent.take([scope('bot', '10/s')], 0);
    silent.primaryGone();
    await expect(waiting).rejects.toThrow(/primary process is gone/);
    await expect(silent.take([scope('bot', '10/s')], 0)).rejects.toThrow(/primary process is gone/);
    const broken = new RemoteRates(() => {
      throw new Error('channel closed');
    });
    await expect(broken.take([scope('bot', '10/s')], 0)).rejects.toThrow(/channel closed/);
  });
});

describe('proxy.workers: the setting and the platform', () => {
  it('auto is one per core, a number is itself', () => {
    expect(workerCount('auto', () => 8)).toBe(8);
    expect(workerCount('auto', () => 0)).toBe(1);
    expect(workerCount(3, () => 8)).toBe(3);
  });

  it('needs SO_REUSEPORT listeners: Node 22.12+ or 23.1+, on Linux or a BSD', () => {
    expect(() => checkReusePort('linux', '24.21.0')).not.toThrow();
    expect(() => checkReusePort('linux', '22.12.0')).not.toThrow();
    expect(() => checkReusePort('freebsd', '23.1.0')).not.toThrow();
    expect(() => checkReusePort('linux', '22.11.0')).toThrow(/needs Node 22.12 or later \(this is 22.11.0\)/);
    expect(() => checkReusePort('linux', '23.0.0')).toThrow(/Node 22.12/);
    expect(() => checkReusePort('win32', '24.0.0')).toThrow(/win32 does not have; set proxy.workers: 1/);
  });
});

describe('proxy.workers: the last hour, summed', () => {
  const minute = (m: string, inject: number, codes: Record<string, number> = {}): MinuteCount => ({
    minute: m,
    inject,
    tunnel: 0,
    deny: 0,
    error: 0,
    refreshed: 0,
    codes,
  });
  it('adds the same minute across workers, codes included, oldest first', () => {
    const a = [minute('2026-01-01T00:00:00.000Z', 1), minute('2026-01-01T00:01:00.000Z', 2, { rate_limited: 1 })];
    const b = [minute('2026-01-01T00:01:00.000Z', 3, { rate_limited: 2, policy_denied: 1 }), minute('2026-01-01T00:02:00.000Z', 4)];
    const merged = mergeMinutes([a, b]);
    expect(merged.map((m) => [m.minute.slice(14, 16), m.inject])).toEqual([
      ['00', 1],
      ['01', 5],
      ['02', 4],
    ]);
    expect(merged[1]!.codes).toEqual({ rate_limited: 3, policy_denied: 1 });
    // The inputs are left as they were.
    expect(a[1]!.inject).toBe(2);
  });
});
