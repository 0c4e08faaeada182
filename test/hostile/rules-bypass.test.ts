import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { normaliseRequestTarget } from '../../src/policy/request-path.ts';
import { compileRules, evaluate, type AgentPolicy, type PolicyRequest } from '../../src/policy/rules.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { report, scale } from './scale.ts';

// Rule bypasses (issue 8, defect 7), as an attacker would try them. Whatever the agent puts in the
// request target, once keyway accepts it: (1) no way a lenient server may read the path keyway sends
// reaches what a deny rule refuses, or leaves what an allow rule allows; (2) through the real proxy,
// the upstream receives exactly the normalised path and query keyway judged and audited, and a
// refusal sends it nothing. Short form in npm test; `npm run hostile -- --long rules-bypass.test.ts`.

const policyOf = (rules: unknown[]): AgentPolicy => {
  const config = parseConfig({ agents: { a: { key: 'env:K', rules } } }, '/home/test');
  return compileRules('a', config.agents['a']!.rules, 'enforce');
};
const req = (path: string, method = 'GET'): PolicyRequest => ({ grant: 'g', method, path, source: '127.0.0.1', bodyBytes: 0, now: new Date(0) });

// How servers in the wild may route a path: decode %2F or not, fold case, drop ;parameters
// (Tomcat, Jetty), trim trailing dots and spaces (IIS, Windows), drop a format suffix (Rails, Spring).
interface Reading {
  slash: boolean;
  fold: boolean;
  params: boolean;
  trim: boolean;
  suffix: boolean;
}
const READINGS: Reading[] = [];
for (let bits = 0; bits < 32; bits++) {
  READINGS.push({ slash: !!(bits & 1), fold: !!(bits & 2), params: !!(bits & 4), trim: !!(bits & 8), suffix: !!(bits & 16) });
}

function serverPath(sent: string, r: Reading): string[] {
  const raw = r.slash ? sent.replace(/%2F/gi, '/') : sent;
  const parts: string[] = [];
  for (let seg of raw.split('/')) {
    seg = decodeURIComponent(seg.replace(/%2F/gi, '%252F'));
    if (r.fold) seg = seg.normalize('NFKC').toLowerCase();
    if (r.params) seg = seg.split(';')[0]!;
    if (r.trim) seg = seg.replace(/[\s.]+$/u, '') || (seg.startsWith('.') ? seg : '');
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  if (r.suffix && parts.length > 0) parts[parts.length - 1] = parts.at(-1)!.replace(/^([^.]+)\..*$/, '$1');
  return parts;
}

const PIECES = [
  'admin',
  'ADMIN',
  'Admin',
  '%61dmin',
  '%41DMIN',
  '%EF%BD%81dmin',
  'repos',
  'REPOS',
  'x',
  '/',
  '//',
  '.',
  '..',
  '%2e',
  '%2E%2e',
  ';',
  ';x=1',
  '.json',
  '%20',
  ' ',
  '%2F',
  '%2f',
  '%25',
  '%252f',
  '%00',
  '%5C',
  '\\',
  '%C0%AF',
  '#',
  '?',
  '%3B',
  '..;',
  'dmin',
  '%2e%2e%2f',
];
const targets = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 8 }).map((p) => `/${p.join('')}`);

const RUNS = scale(20_000, 1_000_000);

describe('no server reading of an accepted path escapes the rules (fuzzed)', () => {
  const deny = policyOf([{ grant: 'g', deny: true, paths: ['/admin/**'] }]);
  const allow = policyOf([{ grant: 'g', paths: ['/repos/**'] }]);
  const counts = { cases: 0, refused: 0, reachAdmin: 0 };
  afterAll(() => report('rules-bypass', { property: 'deny', ...counts, readings: READINGS.length, escapes: 0 }));

  it('a deny on /admin/** refuses every path any server reads as /admin…', () => {
    fc.assert(
      fc.property(targets, (target) => {
        const sent = normaliseRequestTarget(target);
        counts.cases++;
        if (!sent.ok) return void counts.refused++; // 400 bad_request: nothing goes up
        const reachesAdmin = READINGS.some((r) => serverPath(sent.path, r)[0]?.normalize('NFKC').toLowerCase() === 'admin');
        if (reachesAdmin) {
          counts.reachAdmin++;
          expect(evaluate(deny, req(sent.path)).allowed, `${target} sent as ${sent.path}`).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('an allow on /repos/** allows only paths that every server reads under /repos', () => {
    fc.assert(
      fc.property(targets, (target) => {
        const sent = normaliseRequestTarget(target);
        if (!sent.ok || !evaluate(allow, req(sent.path)).allowed) return;
        for (const r of READINGS) expect(serverPath(sent.path, r)[0]?.toLowerCase(), `${target} sent as ${sent.path}`).toBe('repos');
      }),
      { numRuns: RUNS },
    );
  });
});

/** One keep-alive TLS connection through keyway, one request at a time, every wait bounded. */
class Tunnel {
  #buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;
  readonly tls: TLSSocket;
  private constructor(tls: TLSSocket) {
    this.tls = tls;
    tls.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    tls.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    tls.on('error', () => undefined);
  }

  static async open(proxyPort: number, authority: string, auth: string, ca: string): Promise<Tunnel> {
    const socket = netConnect({ host: '127.0.0.1', port: proxyPort });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    const head = await waitFor(() => (socket.read() as Buffer | null) ?? undefined, 'the CONNECT answer');
    if (!head.toString('latin1').startsWith('HTTP/1.1 200')) throw new Error('CONNECT refused');
    return new Tunnel(await startTls(socket, authority.split(':')[0]!, ca));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one request; resolves with its status once the whole response has arrived. */
  async send(text: string): Promise<number> {
    this.tls.write(text);
    const deadline = Date.now() + 5_000;
    for (;;) {
      const status = this.#take();
      if (status !== undefined) return status;
      if (this.#closed) throw new Error(`closed mid-response: ${this.#buffer.toString('latin1').slice(0, 80)}`);
      if (Date.now() > deadline) throw new Error('no response within 5 s');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  }

  #take(): number | undefined {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const head = this.#buffer.subarray(0, end).toString('latin1');
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let total: number;
    if (length) total = end + 4 + Number(length[1]);
    else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const last = this.#buffer.indexOf('\r\n0\r\n\r\n', end);
      if (last === -1) return undefined;
      total = last + 7;
    } else if (this.#closed) total = this.#buffer.length;
    else return undefined;
    if (this.#buffer.length < total) return undefined;
    this.#buffer = this.#buffer.subarray(total);
    if (/\r\nconnection:\s*close/i.test(head)) this.close(); // keyway ends this connection: open another
    return Number(head.split(' ')[1]);
  }

  close(): void {
    this.#closed = true;
    this.tls.destroy();
  }
}

describe('through the real proxy: the upstream receives exactly what keyway judged and audited', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let ca: string;
  const AUTH = `Proxy-Authorization: Basic ${Buffer.from('claude:claude-key').toString('base64')}\r\n`;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
      env: { CLAUDE_KEY: 'claude-key' },
      config: {
        agents: {
          claude: {
            key: 'env:CLAUDE_KEY',
            rules: [
              { grant: 'api', methods: ['GET'], paths: ['/**'] },
              { grant: 'api', deny: true, paths: ['/admin/**'] },
            ],
          },
        },
      },
    });
    ca = readFileSync(proxy.caPath, 'utf8');
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('random hostile targets: 0 escapes, 0 differences between judged, sent and audited', async () => {
    // No raw space: it would end the request line (the smuggling suite covers malformed lines).
    const pieces = [...PIECES.filter((p) => p !== ' '), '\u00e9', '%E9', '?q=%2F..', '#/../admin'];
    const cases = fc.sample(
      fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 8 }).map((p) => `/${p.join('')}`),
      scale(400, 20_000),
    );
    const authority = `api.example.test:${upstream.port}`;
    const figures = { cases: cases.length, forwarded: 0, refused400: 0, denied403: 0, parserRefused: 0, escapes: 0, mismatches: 0 };
    const expectedAudit: Array<string | null> = [];
    const startedAt = performance.now();
    let tunnel = await Tunnel.open(proxy.port, authority, AUTH, ca);
    for (const target of cases) {
      if (tunnel.closed) tunnel = await Tunnel.open(proxy.port, authority, AUTH, ca);
      const before = upstream.seen.length;
      const status = await tunnel.send(`GET ${target} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      const judged = normaliseRequestTarget(target);
      if (status === 200) {
        figures.forwarded++;
        const seen = upstream.seen.at(-1);
        if (
          !judged.ok ||
          upstream.seen.length !== before + 1 ||
          seen?.url !== `${judged.path}${judged.query}` ||
          seen.headers.authorization !== `Bearer ${CANARY}`
        ) {
          figures.mismatches++;
          expect.fail(`${JSON.stringify(target)}: upstream got ${JSON.stringify(seen?.url)}, keyway judged ${JSON.stringify(judged)}`);
        }
        const sentPath = seen!.url.split('?')[0]!;
        if (READINGS.some((r) => serverPath(sentPath, r)[0]?.normalize('NFKC').toLowerCase() === 'admin')) {
          figures.escapes++;
          expect.fail(`${JSON.stringify(target)} reached /admin as ${sentPath}`);
        }
        expectedAudit.push(judged.path);
      } else {
        expect(upstream.seen.length, target).toBe(before);
        if (status === 403) figures.denied403++;
        else if (status === 400 && judged.ok)
          figures.parserRefused++; // Node's parser refused it first
        else if (status === 400) figures.refused400++;
        else expect.fail(`${JSON.stringify(target)}: unexpected status ${status}`);
        expectedAudit.push(status === 403 && judged.ok ? judged.path : null);
      }
    }
    tunnel.close();
    const elapsed = performance.now() - startedAt;
    // One audit line per request, each naming the path that was judged (null when none could be),
    // except refusals past the audit budget (20 identical ones per 10 s, audit/refusal-budget.ts):
    // those are counted in a summary line, written at the latest when keyway stops.
    await proxy.stop();
    const all = proxy.auditLines();
    const lines = all.filter((l) => l['repeated'] === undefined);
    const folded = all.reduce((n, l) => n + (typeof l['repeated'] === 'number' ? l['repeated'] : 0), 0);
    expect(lines.length + folded).toBe(cases.length);
    const sortKey = (p: string | null) => p ?? '';
    const unmatched = new Map<string, number>();
    for (const p of expectedAudit) unmatched.set(sortKey(p), (unmatched.get(sortKey(p)) ?? 0) + 1);
    for (const l of lines) {
      const key = sortKey(l['path'] as string | null);
      expect(unmatched.get(key) ?? 0, `audited path ${JSON.stringify(key)} was not judged`).toBeGreaterThan(0);
      unmatched.set(key, unmatched.get(key)! - 1);
    }
    // A forwarded request's line is never folded: every one is there, naming the path sent.
    expect(lines.filter((l) => l['decision'] === 'inject')).toHaveLength(figures.forwarded);
    expect(readFileSync(proxy.auditPath, 'utf8')).not.toContain(CANARY);
    report('rules-bypass', { property: 'end-to-end', ...figures, ms_per_request: Math.round((elapsed / cases.length) * 100) / 100 });
  });
});
