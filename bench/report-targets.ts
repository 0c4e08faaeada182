// The summary: one line per target. Issue 12's targets are keyway against squid measured in the
// same run (and its memory against the bare forwarder's); the older ratios to direct follow them.
import { addedP50, addedPerHost, type LatencyFigures, type NewHostFigures, type ThroughputFigures } from './report.ts';
import type { RefreshFigures } from './report-refresh.ts';
import { SIGV4_CPU_TARGET, type SignedGetFigures, type SignedUploadFigures } from './report-signed.ts';
import type { AwsHostCounts } from './aws-host.ts';
import type { H2Figures } from './h2.ts';
import { fixed, signed, table } from './stats.ts';

export interface TargetLine {
  target: string;
  measured: string;
  pass: boolean;
  /** A figure shown beside the targets, with no threshold (or none measurable): printed as "info", not counted. */
  info?: boolean;
}

/** RSS after a scenario, per proxy that ran. */
export interface RssReadings {
  keyway: number;
  squid?: number | undefined;
  floor?: number | undefined;
}

export interface SummaryInput {
  s1: LatencyFigures;
  s2: LatencyFigures;
  s3: ThroughputFigures;
  s4: ThroughputFigures;
  s5: NewHostFigures;
  s7: H2Figures;
  rssAfterS2: RssReadings;
  rssAfterS5: RssReadings;
  withoutCredential: number;
  s6: RefreshFigures;
}

/** Three decimals in the summary, so a value just under a threshold never prints as equal to it. */
const ratio3 = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(3)}x` : 'n/a');
const RSS_MARGIN_MIB = 10;
/**
 * Issue 64's goals, moved by issue 92, in one run beside squid: s2 CPU per request against squid's
 * (1.35x, now 1.4x with the short rounds' own mark beside it) and RSS after s2 (105 MiB, now 110:
 * Sparkplug and TurboFan sooner cost ~3 MiB for the first thousands of requests; src/cli/proxy-runtime.ts).
 */
const S2_CPU_GOAL = 1.4;
const RSS_AFTER_S2_GOAL_MIB = 110;

/** A target that needs a peer: not counted (info) when the peer did not run. */
function against(peer: 'squid' | 'floor', ran: boolean, target: string, measured: () => string, pass: () => boolean): TargetLine {
  if (!ran) return { target, measured: `n/a (${peer} did not run)`, pass: false, info: true };
  return { target, measured: measured(), pass: pass() };
}

export function squidTargetLines(s: SummaryInput): TargetLine[] {
  const squid = s.s2.routes.squid !== undefined;
  const floor = s.rssAfterS2.floor !== undefined;
  const k2 = s.s2.keyway;
  const q2 = s.s2.routes.squid;
  const s2Ratio = q2 ? k2.rps / q2.rps : Number.NaN;
  const tp = (f: ThroughputFigures) => f.keywayMiBps / (f.routes.squid ?? Number.NaN);
  const rss = (r: RssReadings, after: string): TargetLine =>
    against(
      'floor',
      floor,
      `keyway RSS after ${after} <= bare forwarder's + ${RSS_MARGIN_MIB} MiB`,
      () => `${fixed(r.keyway, 1)} MiB vs ${fixed(r.floor ?? Number.NaN, 1)} MiB (squid ${fixed(r.squid ?? Number.NaN, 1)} MiB)`,
      () => r.keyway <= (r.floor ?? Number.NaN) + RSS_MARGIN_MIB,
    );
  return [
    against(
      'squid',
      squid,
      's2 64 connections: req/s keyway ÷ squid >= 1.0 (stretch 1.25)',
      () => `${ratio3(s2Ratio)}${s2Ratio >= 1.25 ? ' (stretch met)' : ''}`,
      () => s2Ratio >= 1,
    ),
    against(
      'squid',
      squid,
      "s1 sequential GET: keyway's added p50 <= squid's",
      () => `${signed(s.s1.addedP50Ms, 3)} ms vs ${signed(addedP50(s.s1, 'squid'), 3)} ms`,
      () => s.s1.addedP50Ms <= addedP50(s.s1, 'squid'),
    ),
    against(
      'squid',
      squid,
      's3 1 MiB downloads: MiB/s keyway ÷ squid >= 1.0',
      () => ratio3(tp(s.s3)),
      () => tp(s.s3) >= 1,
    ),
    against(
      'squid',
      squid,
      's4 1 MiB uploads: MiB/s keyway ÷ squid >= 1.0',
      () => ratio3(tp(s.s4)),
      () => tp(s.s4) >= 1,
    ),
    against(
      'squid',
      squid,
      "s5 new host: keyway's added ms per host <= squid's",
      () => `${signed(s.s5.addedMsPerHost)} ms vs ${signed(addedPerHost(s.s5, 'squid'))} ms`,
      () => s.s5.addedMsPerHost <= addedPerHost(s.s5, 'squid'),
    ),
    against(
      'squid',
      squid,
      "s2 CPU per request: keyway <= 1.2x squid's",
      () =>
        `${fixed(k2.cpuMsPerRequest, 3)} ms vs ${fixed(q2?.cpuMsPerRequest ?? Number.NaN, 3)} ms (${ratio3(k2.cpuMsPerRequest / (q2?.cpuMsPerRequest ?? Number.NaN))})`,
      () => k2.cpuMsPerRequest <= 1.2 * (q2?.cpuMsPerRequest ?? Number.NaN),
    ),
    against(
      'squid',
      squid,
      `s2 CPU per request: keyway <= ${S2_CPU_GOAL}x squid's (issues 64, 92)`,
      () => ratio3(k2.cpuMsPerRequest / (q2?.cpuMsPerRequest ?? Number.NaN)),
      () => k2.cpuMsPerRequest <= S2_CPU_GOAL * (q2?.cpuMsPerRequest ?? Number.NaN),
    ),
    rss(s.rssAfterS2, 's2'),
    rss(s.rssAfterS5, 's5'),
    {
      target: 's7 64 streams on one HTTP/2 connection: req/s keyway ÷ direct (no target)',
      measured: s.s7.ran ? ratio3(s.s7.ratio) : s.s7.note,
      pass: true,
      info: true,
    },
  ];
}

/** The targets of earlier issues: ratios to direct and absolute bounds. */
export function directTargetLines(s: SummaryInput): TargetLine[] {
  return [
    { target: 's1 sequential GET: keyway adds <= 0.25 ms at p50', measured: `${signed(s.s1.addedP50Ms, 3)} ms`, pass: s.s1.addedP50Ms <= 0.25 },
    { target: 's2 64 connections: req/s >= 0.40x direct', measured: ratio3(s.s2.ratio), pass: s.s2.ratio >= 0.4 },
    { target: 's3 1 MiB downloads: MiB/s >= 0.30x direct', measured: ratio3(s.s3.ratio), pass: s.s3.ratio >= 0.3 },
    { target: 's4 1 MiB uploads: MiB/s >= 0.30x direct', measured: ratio3(s.s4.ratio), pass: s.s4.ratio >= 0.3 },
    { target: 's5 new host: keyway adds <= 5 ms per host', measured: `${signed(s.s5.addedMsPerHost)} ms`, pass: s.s5.addedMsPerHost <= 5 },
    { target: 'keyway RSS after s2 <= 120 MiB', measured: `${fixed(s.rssAfterS2.keyway, 1)} MiB`, pass: s.rssAfterS2.keyway <= 120 },
    {
      target: `keyway RSS after s2 <= ${RSS_AFTER_S2_GOAL_MIB} MiB (issues 64, 92)`,
      measured: `${fixed(s.rssAfterS2.keyway, 1)} MiB`,
      pass: s.rssAfterS2.keyway <= RSS_AFTER_S2_GOAL_MIB,
    },
    { target: 'keyway RSS after s5 <= 120 MiB', measured: `${fixed(s.rssAfterS5.keyway, 1)} MiB`, pass: s.rssAfterS5.keyway <= 120 },
    {
      target: 'requests reaching the upstream through keyway without the credential == 0',
      measured: String(s.withoutCredential),
      pass: s.withoutCredential === 0,
    },
    {
      target: 's6 refresh under load: req/s vs s2 direct (no target)',
      measured: `${ratio3(s.s6.ratioToS2Direct)} (${fixed(s.s6.rps, 0)} req/s)`,
      pass: true,
      info: true,
    },
    {
      target: 's6 refresh under load: token endpoint calls, one per expiry (<= expiries + 1)',
      measured: `${s.s6.tokenCalls} calls, ${fixed(s.s6.expiries, 1)} expiries`,
      pass: s.s6.onePerExpiry,
    },
    {
      target: 's6 refresh under load: non-200 responses == 0',
      measured: String(s.s6.failures + s.s6.warmup.failures),
      pass: s.s6.failures + s.s6.warmup.failures === 0,
    },
  ];
}

/** Issue 24's: what signing costs, keyway on the SigV4 grant against keyway on the bearer grant in the same rounds. */
export function signedTargetLines(s8: SignedGetFigures, s9: SignedUploadFigures, aws: AwsHostCounts): TargetLine[] {
  return [
    {
      target: `s8 s2's load on a SigV4 grant: keyway CPU per request <= ${SIGV4_CPU_TARGET}x on the bearer grant`,
      measured: `${fixed(s8.sigv4.cpuMsPerRequest, 3)} ms vs ${fixed(s8.bearer.cpuMsPerRequest, 3)} ms (${ratio3(s8.cpuRatio)})`,
      pass: s8.cpuRatio <= SIGV4_CPU_TARGET,
    },
    {
      target: 's8 SigV4 grant: req/s ÷ bearer grant (no target)',
      measured: `${ratio3(s8.rpsRatio)} (${fixed(s8.sigv4.rps, 0)} req/s; p50 ${signed(s8.addedP50Ms, 3)} ms)`,
      pass: true,
      info: true,
    },
    {
      target: 's9 s4 uploads on the SigV4 grant, each body held and hashed: MiB/s ÷ bearer grant (no target)',
      measured: `${ratio3(s9.throughputRatio)} (${fixed(s9.sigv4.mibPerSecond, 1)} vs ${fixed(s9.bearer.mibPerSecond, 1)} MiB/s)`,
      pass: true,
      info: true,
    },
    {
      target: 's9 the same: keyway CPU per MiB ÷ bearer grant (no target)',
      measured: `${ratio3(s9.cpuRatio)} (${fixed(s9.sigv4.cpuMsPerMiB, 2)} vs ${fixed(s9.bearer.cpuMsPerMiB, 2)} ms)`,
      pass: true,
      info: true,
    },
    {
      target: "s8/s9 requests reaching the SigV4 host without keyway's signature == 0, and sampled ones verify",
      measured: `${aws.refused} without; ${aws.verified} verified, ${aws.verifyFailed} failed`,
      pass: aws.refused === 0 && aws.verifyFailed === 0 && aws.verified > 0,
    },
  ];
}

export function summaryTable(lines: readonly TargetLine[]): string {
  return table(
    ['target', 'measured', 'result'],
    lines.map((l) => [l.target, l.measured, l.info ? 'info' : l.pass ? 'PASS' : 'MISS']),
  );
}
