// Where one s2m side's CPU goes beside another's, from one keyway process (issue 63): the V8 CPU
// profile of `bench/ab.ts --scenario=s2m --keep --cpu-prof=DIR` split by the turns' spans
// (DIR/turns.json, on the monotonic clock V8's samples use). Both sides ran in the same process, in
// alternating turns, so the luck that sets two processes apart (docs/perf/breakdown.md) is not in
// the difference. Prints, per function (and for the garbage collector), µs of self time per answer
// on each side and the difference, largest first.
//
//   node bench/profile-sides.ts DIR [--a=none] [--b=metered] [--top=40]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface Span {
  side: string;
  startNs: string;
  endNs: string;
  requests: number;
}

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const dir = process.argv[2];
if (dir === undefined || dir.startsWith('--')) {
  console.error('usage: node bench/profile-sides.ts DIR [--a=none] [--b=metered] [--top=40]');
  process.exit(2);
}
const sideA = arg('a') ?? 'none';
const sideB = arg('b') ?? 'metered';
const top = Number(arg('top') ?? 40);

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
const spans = (JSON.parse(readFileSync(join(dir, 'turns.json'), 'utf8')) as Span[]).map((s) => ({
  side: s.side,
  // The profile's clock is in µs.
  start: Number(BigInt(s.startNs) / 1000n),
  end: Number(BigInt(s.endNs) / 1000n),
  requests: s.requests,
}));

/** A function's name and place: minified chunks keep names (scripts/bundle.mjs keepNames). */
const keyOf = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
};
const keys = new Map(profile.nodes.map((n) => [n.id, keyOf(n)]));

const selfBySide = new Map<string, Map<string, number>>();
const requestsBySide = new Map<string, number>();
for (const span of spans) requestsBySide.set(span.side, (requestsBySide.get(span.side) ?? 0) + span.requests);

let t = profile.startTime;
let at = 0;
const ordered = [...spans].sort((x, y) => x.start - y.start);
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  // The sample's time covers the interval up to the next sample.
  const dt = profile.timeDeltas[i + 1] ?? 0;
  while (at < ordered.length && ordered[at]!.end < t) at++;
  const span = ordered[at];
  if (span === undefined || t < span.start) continue;
  let self = selfBySide.get(span.side);
  if (self === undefined) {
    self = new Map();
    selfBySide.set(span.side, self);
  }
  const key = keys.get(profile.samples[i]!)!;
  self.set(key, (self.get(key) ?? 0) + dt);
}

const perAnswer = (side: string, key: string) => (selfBySide.get(side)?.get(key) ?? 0) / (requestsBySide.get(side) ?? 1);
const names = new Set([...(selfBySide.get(sideA)?.keys() ?? []), ...(selfBySide.get(sideB)?.keys() ?? [])]);
const notBusy = (key: string) => key.startsWith('(idle)') || key.startsWith('(program)');
const busy = (side: string) => [...names].filter((k) => !notBusy(k)).reduce((sum, k) => sum + perAnswer(side, k), 0);

console.log(`${file}: ${sideA} ${requestsBySide.get(sideA) ?? 0} answers, ${sideB} ${requestsBySide.get(sideB) ?? 0} answers`);
console.log(`busy µs per answer (idle and "program" left out): ${sideA} ${busy(sideA).toFixed(2)}, ${sideB} ${busy(sideB).toFixed(2)}`);
console.log(`${'difference'.padStart(10)} ${sideA.padStart(8)} ${sideB.padStart(8)}  function`);
const rows = [...names].map((k) => ({ key: k, a: perAnswer(sideA, k), b: perAnswer(sideB, k) }));
rows.sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a));
for (const r of rows.slice(0, top)) console.log(`${(r.b - r.a).toFixed(3).padStart(10)} ${r.a.toFixed(3).padStart(8)} ${r.b.toFixed(3).padStart(8)}  ${r.key}`);
