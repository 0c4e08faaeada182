// The pure parts behind /metrics and /readyz: bounded label values, the tally, the readiness answer.
import { describe, expect, it } from 'vitest';
import { readinessAnswer } from '../../src/admin/operate-routes.ts';
import { readinessOf } from '../../src/admin/readiness.ts';
import { NONE_LABEL, OVERFLOW_LABEL } from '../../src/observability/metrics/index.ts';
import { BoundedLabels } from '../../src/observability/metrics/labels.ts';
import { Tally } from '../../src/observability/metrics/tally.ts';

describe('BoundedLabels', () => {
  it('keeps ids as they are up to its bound, then counts any new one as _other; null is _none', () => {
    const labels = new BoundedLabels(3);
    expect(['a', 'b', 'c'].map((id) => labels.label(id))).toEqual(['a', 'b', 'c']);
    expect(labels.label('d')).toBe(OVERFLOW_LABEL);
    expect(labels.label('a')).toBe('a'); // ids already seen keep their own label
    expect(labels.label(null)).toBe(NONE_LABEL);
  });
});

describe('Tally', () => {
  it('adds by label values and lists each count once', () => {
    const tally = new Tally();
    tally.add('inject', 'none');
    tally.add('inject', 'none');
    tally.add('deny', 'policy_denied', '', 3);
    expect([...tally.entries()]).toEqual([
      ['inject', 'none', '', 2],
      ['deny', 'policy_denied', '', 3],
    ]);
  });
});

describe('readiness', () => {
  const now = () => new Date('2026-11-22T12:00:00Z');
  const healthy = { ca: { notAfter: new Date('2036-01-01T00:00:00Z') }, store: { readError: undefined }, audit: { healthy: true }, now };

  it('is ready with every part ok', () => {
    expect(readinessAnswer(readinessOf(healthy))).toEqual({ status: 200, body: { ready: true, checks: { ca: 'ok', store: 'ok', audit: 'ok' } } });
  });

  it('is not ready once the CA has expired, naming it', () => {
    const answer = readinessAnswer(readinessOf({ ...healthy, ca: { notAfter: new Date('2026-11-22T11:59:59Z') } }));
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ ready: false, reason: expect.stringMatching(/^ca: the CA certificate has expired/) });
  });

  it('names the first failing part as the reason and lists every check', () => {
    const storeError = Object.assign(new Error('/home/someone/.keyway/data/store.json: bad'), { code: 'store_corrupt' });
    const answer = readinessAnswer(readinessOf({ ...healthy, store: { readError: storeError }, audit: { healthy: false } }));
    expect(answer.status).toBe(503);
    const body = answer.body as { reason: string; checks: Record<string, string> };
    expect(body.reason).toMatch(/^store: .*\(store_corrupt\)/);
    expect(body.checks['audit']).toMatch(/cannot be written/);
    expect(JSON.stringify(body)).not.toContain('/home/someone');
  });
});
