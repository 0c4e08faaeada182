// The slow clients of slow-clients.test.ts, run as their own process so that their work (hundreds
// of TLS handshakes) does not stall the event loop that times the steady client's requests.
// Argument: JSON { target, count, ratePerSecond, timeoutsMs, slackMs, hardSlackMs }.
// Output: one JSON line of results on stdout.
import { closedWithin, openSlow, type SlowPhase, type SlowTarget } from '../helpers/slow-client.ts';

interface DriverInput {
  target: SlowTarget;
  count: number;
  ratePerSecond: number;
  timeoutsMs: Record<SlowPhase, number>;
  slackMs: number;
  hardSlackMs: number;
}

export interface DriverResult {
  opened: number;
  openFailures: string[];
  peakHeld: number;
  pastSlack: number;
  pastHardSlack: string[];
  worstPastTimeoutMs: Partial<Record<SlowPhase, number>>;
}

const input = JSON.parse(process.argv[2] ?? '{}') as DriverInput;
const phases = Object.keys(input.timeoutsMs) as SlowPhase[];
const result: DriverResult = { opened: 0, openFailures: [], peakHeld: 0, pastSlack: 0, pastHardSlack: [], worstPastTimeoutMs: {} };
let held = 0;
const watches: Array<Promise<void>> = [];
const started = performance.now();

for (let i = 0; i < input.count; i++) {
  const wait = started + (i * 1000) / input.ratePerSecond - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const phase = phases[i % phases.length]!;
  const timeout = input.timeoutsMs[phase];
  watches.push(
    openSlow(phase, input.target).then(
      async (socket) => {
        result.opened++;
        result.peakHeld = Math.max(result.peakHeld, ++held);
        try {
          const took = await closedWithin(socket, timeout + input.hardSlackMs + 5_000);
          result.worstPastTimeoutMs[phase] = Math.max(result.worstPastTimeoutMs[phase] ?? -Infinity, took - timeout);
          if (took > timeout + input.slackMs) result.pastSlack++;
          if (took > timeout + input.hardSlackMs) result.pastHardSlack.push(`${phase}: ${took} ms`);
        } catch {
          result.pastHardSlack.push(`${phase}: still open after ${timeout + input.hardSlackMs + 5_000} ms`);
        } finally {
          held--;
        }
      },
      (err: Error) => void result.openFailures.push(`${phase}: ${err.message}`),
    ),
  );
}
await Promise.all(watches);
process.stdout.write(`${JSON.stringify(result)}\n`);
