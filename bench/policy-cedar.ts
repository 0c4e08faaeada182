// What policy as code costs a request (issue 88): one access decision (the YAML rules' verdict and
// Cedar's, combined by decide.ts) with no Cedar file, and with 10 and 500 Cedar policies, sliced per
// agent and grant (spread over 50 agents: a request evaluates the few that can apply) and unsliced
// (all on the request's agent and grant: the worst case); and the RSS the engine adds once loaded.
// Usage: node bench/policy-cedar.ts [--rounds=N]   Prints JSON; docs/perf/policy-as-code.md has figures.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decide } from '../src/policy/cedar/decide.ts';
import { loadPolicy } from '../src/policy/cedar/load.ts';
import { policyQueryOf } from '../src/policy/cedar/query.ts';
import { compileRules, evaluate, type PolicyRequest } from '../src/policy/rules.ts';

const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 20_000);
const agents = { claude: { mode: 'enforce' as const, grants: ['github'], rules: [] } };
const yamlPolicy = compileRules('claude', [], 'enforce');

function policies(n: number, spread: boolean): string {
  return Array.from({ length: n }, (_, i) => {
    // Spread: one policy in 50 is claude's (agent-0), the rest other agents', never evaluated for claude.
    const principal = spread && i % 50 !== 0 ? `principal == Agent::"agent-${i % 50}"` : 'principal == Agent::"claude"';
    const effect = i % 2 === 0 ? 'forbid' : 'permit';
    return `@id("p${i}") ${effect} (${principal}, action, resource == Grant::"github") when { context.path like "/x${i}/*" && context.method == "POST" };`;
  }).join('\n');
}

async function measure(label: string, text: string | undefined) {
  const home = mkdtempSync(join(tmpdir(), 'keyway-bench-cedar-'));
  if (text !== undefined) {
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    writeFileSync(join(home, 'policies', 'bench.cedar'), text, { mode: 0o600 });
  }
  const loaded = await loadPolicy({ home, agents });
  const request: PolicyRequest = { grant: 'github', method: 'GET', path: '/repos/a/b', source: '127.0.0.1', bodyBytes: 0, now: new Date() };
  const once = () =>
    decide(evaluate(yamlPolicy, request), yamlPolicy, loaded, () =>
      policyQueryOf({
        agent: 'claude',
        action: 'request',
        grant: 'github',
        method: 'GET',
        host: 'api.github.com',
        port: 443,
        path: '/repos/a/b',
        query: '?page=2',
        bodyBytes: 0,
        now: request.now,
        source: '127.0.0.1',
      }),
    );
  for (let i = 0; i < 2_000; i++) once(); // warm up (and make the slice)
  const samples: number[] = [];
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    once();
    samples.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(start);
  samples.sort((a, b) => a - b);
  const us = (ms: number) => Math.round(ms * 1000 * 10) / 10;
  return {
    label,
    p50_us: us(samples[Math.floor(samples.length * 0.5)]!),
    p99_us: us(samples[Math.floor(samples.length * 0.99)]!),
    cpu_us_per_decision: Math.round(((cpu.user + cpu.system) / rounds) * 10) / 10,
  };
}

const rssBefore = process.memoryUsage().rss;
const results = [await measure('no Cedar file (YAML rules only)', undefined)];
const rssNoEngine = process.memoryUsage().rss;
results.push(await measure('10 policies over 50 agents (1 applies)', policies(10, true)));
const rssEngine = process.memoryUsage().rss;
results.push(await measure('10 policies, all on the agent and grant', policies(10, false)));
results.push(await measure('500 policies over 50 agents (10 apply)', policies(500, true)));
results.push(await measure('500 policies, all on the agent and grant', policies(500, false)));
console.log(
  JSON.stringify(
    {
      rounds,
      results,
      rss_mib: { start: mib(rssBefore), yaml_only: mib(rssNoEngine), engine_loaded: mib(rssEngine), end: mib(process.memoryUsage().rss) },
    },
    null,
    1,
  ),
);

function mib(bytes: number): number {
  return Math.round((bytes / 1048576) * 10) / 10;
}
