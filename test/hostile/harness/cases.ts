// Turns fast-check samples into runnable cases: grammar-built requests, mutated corpus traffic and
// fuzzed CONNECT authorities, each on one leg (weighted toward the cheap absolute-form one) with a
// unique id in its path, and what a strict reader makes of its bytes (which decides the hang budget
// and the body lengths the upstream may see).

import fc from 'fast-check';
import { frameAllRequests } from './frames.ts';
import { pipelineArb, serialise, type RequestSpec } from './grammar.ts';
import { fillTemplate, mutate, mutationsArb, type CorpusEntry, type Mutation } from './mutate.ts';
import type { CaseInput, Leg } from './raw-client.ts';

export interface Ports {
  plain: number;
  tls: number;
  keyway: number;
}

export interface FuzzCase {
  id: string;
  kind: 'grammar' | 'mutation' | 'authority' | 'corpus';
  input: CaseInput;
  /** Body lengths per case id in the path, for requests a strict reader frames cleanly. */
  bodies: Map<string, number[]>;
}

type Sample =
  | { kind: 'grammar'; leg: Leg; specs: RequestSpec[] }
  | { kind: 'mutation'; leg: Leg; entry: number; mutations: Mutation[] }
  | { kind: 'authority'; host: string; sep: string; port: string; version: string; hostHeader: boolean; follow: boolean };

const legArb = fc.constantFrom<Leg>(
  'absolute',
  'absolute',
  'absolute',
  'absolute',
  'absolute',
  'absolute',
  'tunnel-plain',
  'tunnel-plain',
  'tunnel-tls',
  'tunnel-tls',
);

const AUTHORITY_HOSTS = [
  'api.example.test',
  'plain.example.test',
  'API.Example.TEST',
  'api.example.test.',
  'other.example.test',
  '127.0.0.1',
  '127.1',
  '[::1]',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '[0:0:0:0:0:ffff:7f00:1]',
  'localhost',
  '0x7f000001',
  '2130706433',
  '',
  'user@api.example.test',
  'a'.repeat(300),
  '%61pi.example.test',
  'api.example.test\0',
  '[::1',
  'api..example.test',
  '*.example.test',
  'api.example.test/x',
  'api_example.test',
  '[fe80::1%25lo]',
  '-api.example.test',
];
const PORTS = ['{TLS}', '{PLAIN}', '{KEYWAY}', '0', '65536', '99999', '-1', '', '+{TLS}', ' {TLS}', '0{TLS}', '{TLS} ', '{TLS}a', '443'];

export function sampleArb(corpusSize: number): fc.Arbitrary<Sample> {
  return fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('grammar' as const), leg: legArb, specs: pipelineArb }), weight: 5 },
    {
      arbitrary: fc.record({
        kind: fc.constant('mutation' as const),
        leg: legArb,
        entry: fc.integer({ min: 0, max: corpusSize - 1 }),
        mutations: mutationsArb,
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('authority' as const),
        host: fc.constantFrom(...AUTHORITY_HOSTS),
        sep: fc.constantFrom(':', ':', ':', '::', ''),
        port: fc.constantFrom(...PORTS),
        version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2'),
        hostHeader: fc.boolean(),
        follow: fc.boolean(),
      }),
      weight: 1,
    },
  );
}

function fillFor(leg: Leg, ports: Ports, id: string): { prefix: string; host: string; id: string; authority?: string; servername?: string } {
  if (leg === 'tunnel-tls')
    return { prefix: '', host: `api.example.test:${ports.tls}`, id, authority: `api.example.test:${ports.tls}`, servername: 'api.example.test' };
  const host = `plain.example.test:${ports.plain}`;
  return leg === 'absolute' ? { prefix: `http://${host}`, host, id } : { prefix: '', host, id, authority: host };
}

export function buildCase(sample: Sample, id: string, ports: Ports, corpus: readonly CorpusEntry[]): FuzzCase {
  if (sample.kind === 'authority') {
    const port = sample.port.replaceAll('{TLS}', String(ports.tls)).replaceAll('{PLAIN}', String(ports.plain)).replaceAll('{KEYWAY}', String(ports.keyway));
    const authority = `${sample.host}${sample.sep}${port}`;
    const follow = sample.follow ? `GET /fz/${id}/ HTTP/1.1\r\nHost: ${authority}\r\n\r\n` : '';
    const text = `CONNECT ${authority} ${sample.version}\r\n${sample.hostHeader ? `Host: ${authority}\r\n` : ''}\r\n${follow}`;
    return {
      id,
      kind: 'authority',
      input: { leg: 'absolute', bytes: Buffer.from(text, 'latin1'), methods: ['CONNECT', 'GET'], expected: undefined },
      bodies: new Map(),
    };
  }
  const fill = fillFor(sample.leg, ports, id);
  const text =
    sample.kind === 'grammar'
      ? sample.specs.map((spec, i) => serialise(spec, fill, i)).join('')
      : fillTemplate(mutate(corpus[sample.entry]!.text, sample.mutations), fill);
  return fromText(sample.kind, sample.leg, id, Buffer.from(text, 'latin1'), fill);
}

/** A case from finished bytes (the corpus replay uses this too). */
export function fromText(kind: FuzzCase['kind'], leg: Leg, id: string, bytes: Buffer, fill: { authority?: string; servername?: string }): FuzzCase {
  const reference = frameAllRequests(bytes);
  const clean = reference.rest === 'complete' && reference.frames.length > 0;
  const bodies = new Map<string, number[]>();
  for (const frame of reference.frames) {
    const caseId = /\/fz\/([a-z0-9]+)\//.exec(frame.second)?.[1];
    if (caseId !== undefined) bodies.set(caseId, [...(bodies.get(caseId) ?? []), frame.body.length]);
  }
  return {
    id,
    kind,
    input: {
      leg,
      authority: fill.authority,
      servername: fill.servername,
      bytes,
      methods: clean ? reference.frames.map((f) => f.first) : [...reference.frames.map((f) => f.first), ...methodsFrom(bytes.subarray(reference.restAt))],
      expected: clean ? reference.frames.length : undefined,
    },
    bodies: clean ? bodies : new Map(),
  };
}

/**
 * Methods a lenient reader might see past where the strict one stopped (an answer to HEAD, or a 2xx to
 * CONNECT, has no body). Node's parser takes more than one space before the version, so this does too:
 * missing such a line once made the framer read a DELETE's answer as a CONNECT's and call it malformed.
 */
function methodsFrom(bytes: Buffer): string[] {
  return [...bytes.toString('latin1').matchAll(/(?:^|[\r\n])([A-Za-z]+) +(?:http:\/\/|\/)\S* +HTTP\//g)].map((m) => m[1]!);
}

export function corpusCases(corpus: readonly CorpusEntry[], ports: Ports, idFor: (n: number) => string): FuzzCase[] {
  const cases: FuzzCase[] = [];
  for (const entry of corpus) {
    for (const leg of ['absolute', 'tunnel-plain', 'tunnel-tls'] as const) {
      const id = idFor(cases.length);
      const fill = fillFor(leg, ports, id);
      cases.push(fromText('corpus', leg, id, Buffer.from(fillTemplate(entry.text, fill), 'latin1'), fill));
    }
  }
  return cases;
}

export function readCorpus(text: string): CorpusEntry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as CorpusEntry);
}
