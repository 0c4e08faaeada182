// Delegated agents in /metrics (issue 89): a child's request counts under its root agent as well
// as its own name; children are labelled from a bounded set of their own, so agents minted per run
// (`run --delegate`) never crowd root agents out of theirs.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import { KeywayMetrics, MAX_CHILD_LABELS } from '../../src/observability/metrics/keyway-metrics.ts';
import { OVERFLOW_LABEL } from '../../src/observability/metrics/labels.ts';

const event = (over: Partial<AuditEvent>): AuditEvent => ({ decision: 'inject', grant: 'github', agent: 'lead', ...over }) as AuditEvent;
const samples = (text: string, name: string) => text.split('\n').filter((line) => line.startsWith(`${name}{`));

describe('metrics of a delegation tree', () => {
  it('count a child under its root and under its own name; a root agent under itself', async () => {
    const metrics = new KeywayMetrics();
    metrics.request(event({}), undefined);
    metrics.request(event({ agent: 'worker', chain: ['lead', 'worker'] }), undefined);
    metrics.request(event({ agent: 'helper', chain: ['lead', 'worker', 'helper'], decision: 'deny', code: 'policy_denied' }), undefined);
    const text = (await metrics.scrape()).text;
    expect(samples(text, 'keyway_root_agent_requests_total').sort()).toEqual([
      'keyway_root_agent_requests_total{grant="github",root_agent="lead",decision="deny"} 1',
      'keyway_root_agent_requests_total{grant="github",root_agent="lead",decision="inject"} 2',
    ]);
    expect(samples(text, 'keyway_grant_requests_total')).toContain('keyway_grant_requests_total{grant="github",agent="worker",decision="inject"} 1');
  });

  it('label at most MAX_CHILD_LABELS children, and root agents keep their names past them', async () => {
    const metrics = new KeywayMetrics();
    for (let i = 0; i < MAX_CHILD_LABELS + 50; i++) metrics.request(event({ agent: `run-${i}`, chain: ['lead', `run-${i}`] }), undefined);
    metrics.request(event({ agent: 'second-root' }), undefined);
    const text = (await metrics.scrape()).text;
    const agents = new Set(samples(text, 'keyway_grant_requests_total').map((line) => /agent="([^"]+)"/.exec(line)![1]));
    expect(agents.size).toBe(MAX_CHILD_LABELS + 2); // the children labelled, _other, second-root
    expect(agents.has(OVERFLOW_LABEL)).toBe(true);
    expect(agents.has('second-root')).toBe(true);
    expect(samples(text, 'keyway_root_agent_requests_total')).toContain(
      `keyway_root_agent_requests_total{grant="github",root_agent="lead",decision="inject"} ${MAX_CHILD_LABELS + 50}`,
    );
  });
});
