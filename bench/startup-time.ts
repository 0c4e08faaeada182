// One timed run of a command for bench/startup.ts and bench/startup-ab.ts.
import { spawn } from 'node:child_process';
import { processCpuMs } from './proc.ts';

const RUN_TIMEOUT_MS = 60_000;

export interface Sample {
  wallMs: number;
  cpuMs: number;
  /** CPU the running keyway spent during this run (0 where none runs). */
  keywayCpuMs: number;
}

/** bash's `time` around the command, so neither Node's spawn nor bash's start is counted. */
export async function timed(command: readonly string[], env: Record<string, string>, cwd: string, keywayPid: number | undefined): Promise<Sample> {
  const script = 'TIMEFORMAT="KWB-TIME %3R %3U %3S"; time "$@"';
  const child = spawn('bash', ['-c', script, 'bash', ...command], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const keyway0 = keywayPid === undefined ? 0 : processCpuMs(keywayPid);
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((done) => child.once('close', (exit) => done(exit)));
  clearTimeout(timer);
  const keywayCpuMs = keywayPid === undefined ? 0 : processCpuMs(keywayPid) - keyway0;
  const line = err.split('\n').find((l) => l.startsWith('KWB-TIME '));
  if (code !== 0 || line === undefined) throw new Error(`${command.join(' ')}: exit ${code}\n${err.slice(-2000)}`);
  const [real, user, sys] = line.split(' ').slice(1).map(Number) as [number, number, number];
  return { wallMs: real * 1000, cpuMs: (user + sys) * 1000, keywayCpuMs };
}
