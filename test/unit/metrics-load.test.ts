// prom-client is loaded at a keyway's first scrape (observability/metrics/keyway-metrics.ts): what
// is observed before it must be in that scrape exactly as if prom-client had been there all along.
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import { KeywayMetrics } from '../../src/observability/metrics/index.ts';

const event = (over: Partial<AuditEvent>): AuditEvent => ({ decision: 'inject', grant: 'github', agent: 'bot', ...over }) as AuditEvent;

/** The sample lines of one metric in the exposition text. */
const samples = (text: string, name: string) => text.split('\n').filter((line) => line.startsWith(name));

function observeAll(metrics: KeywayMetrics): void {
  metrics.request(event({}), 0.003);
  metrics.request(event({ decision: 'deny', code: 'policy_denied' }), undefined);
  metrics.request(event({ usage: { model: 'm-1', input_tokens: 10, output_tokens: 2 }, cost_usd: 0.25 } as Partial<AuditEvent>), 0.01);
  metrics.tokenRequest('github', 0.2, 'ok');
  metrics.tokenRequest('github', 3, 'timeout');
  metrics.tokenRefreshed('github');
  metrics.secretSourceFetch('vault', false);
  metrics.auditBatch(0.002, true);
}

describe('metrics observed before prom-client is loaded', () => {
  it('are all in the first scrape, as when observed after it, and count on after it', async () => {
    const early = new KeywayMetrics();
    observeAll(early); // nothing has loaded prom-client for this one yet
    const late = new KeywayMetrics();
    await late.scrape();
    observeAll(late);
    const [a, b] = [(await early.scrape()).text, (await late.scrape()).text];
    for (const name of [
      'keyway_requests_total',
      'keyway_grant_requests_total',
      'keyway_policy_denials_total',
      'keyway_model_tokens_total',
      'keyway_spend_usd_total',
      'keyway_upstream_response_seconds',
      'keyway_token_requests_total',
      'keyway_token_request_seconds',
      'keyway_token_refreshes_total',
      'keyway_secret_source_fetches_total',
      'keyway_secret_source_up',
      'keyway_audit_write_seconds',
    ]) {
      expect(samples(a, name).length, name).toBeGreaterThan(0);
      expect(samples(a, name), name).toEqual(samples(b, name));
    }
    expect(samples(a, 'keyway_upstream_response_seconds_count')).toEqual(['keyway_upstream_response_seconds_count 2']);
    expect(samples(a, 'keyway_spend_usd_total')).toEqual(['keyway_spend_usd_total{grant="github",agent="bot"} 0.25']);
    expect(samples(a, 'keyway_token_requests_total')).toContain('keyway_token_requests_total{grant="github",result="timeout"} 1');
    expect(samples(a, 'keyway_secret_source_up')).toEqual(['keyway_secret_source_up{source="vault"} 0']);
    // prom-client's own set is there too.
    expect(samples(a, 'process_cpu_seconds_total').length).toBe(1);

    early.request(event({}), 0.5);
    expect(samples((await early.scrape()).text, 'keyway_upstream_response_seconds_count')).toEqual(['keyway_upstream_response_seconds_count 3']);
  });

  it('lists the metrics in the order they always had', async () => {
    const names = samples((await new KeywayMetrics().scrape()).text, '# TYPE keyway_').map((line) => line.split(' ')[2]);
    expect(names.slice(0, 10)).toEqual([
      'keyway_requests_total',
      'keyway_grant_requests_total',
      'keyway_leak_redactions_total',
      'keyway_policy_denials_total',
      'keyway_limited_total',
      'keyway_approval_requests_total',
      'keyway_model_tokens_total',
      'keyway_spend_usd_total',
      'keyway_upstream_response_seconds',
      'keyway_token_requests_total',
    ]);
  });
});

describe('a keyway nobody scrapes', () => {
  // In a Node of its own, so that what loads prom-client can be seen (as start-imports.test.ts does).
  it('never loads prom-client, and its first scrape holds everything observed before it', () => {
    const metricsUrl = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), '../../src/observability/metrics/index.ts')).href;
    const script = `
      import { registerHooks } from 'node:module';
      const urls = [];
      registerHooks({ resolve(s, c, next) { const r = next(s, c); urls.push(r.url); return r; } });
      const promLoaded = () => urls.some((u) => u.includes('/node_modules/prom-client/'));
      const { KeywayMetrics } = await import(${JSON.stringify(metricsUrl)});
      const metrics = new KeywayMetrics();
      metrics.request({ decision: 'inject', grant: 'github', agent: 'bot' }, 0.003);
      metrics.tokenRefreshed('github');
      metrics.auditBatch(0.002, true);
      // Past the 2 s after which keyway used to load it whether or not anyone scraped.
      await new Promise((r) => setTimeout(r, 2500));
      const before = promLoaded();
      const text = (await metrics.scrape()).text;
      process.stdout.write(JSON.stringify({ before, after: promLoaded(), text }));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 50_000 });
    expect(child.status, child.stderr).toBe(0);
    const { before, after, text } = JSON.parse(child.stdout) as { before: boolean; after: boolean; text: string };
    expect(before).toBe(false);
    expect(after).toBe(true);
    expect(samples(text, 'keyway_upstream_response_seconds_count')).toEqual(['keyway_upstream_response_seconds_count 1']);
    expect(samples(text, 'keyway_token_refreshes_total{')).toEqual(['keyway_token_refreshes_total{grant="github"} 1']);
    expect(samples(text, 'keyway_audit_write_seconds_count')).toEqual(['keyway_audit_write_seconds_count{result="ok"} 1']);
  });
});
