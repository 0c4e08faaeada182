// The bare forwarder (bench/bare-forwarder.mjs) as a child process under keyway's runtime settings:
// the floor that keyway's figures are read against. Its leaves are made beforehand (with keyway's CA
// code), so its s5 shows no minting cost.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROXY_ENV, PROXY_NODE_FLAGS } from '../src/cli/proxy-runtime.ts';
import { LeafMinter, loadOrCreateCa } from '../src/tls/index.ts';
import { type InspectorClient, inspectorOf, inspectorUrls } from './inspector.ts';
import { type MemoryReading, processCpuMs, readMemory } from './proc.ts';

const FORWARDER = fileURLToPath(new URL('./bare-forwarder.mjs', import.meta.url));
const START_TIMEOUT_MS = 15_000;

export interface FloorChildOptions {
  /** Every host name a request may go to (a leaf is made for each). */
  hosts: readonly string[];
  secret: string;
  upstreamCaPath: string;
  /** Open the inspector on a free loopback port, for bench/run.ts --profile. */
  inspect?: boolean | undefined;
}

export interface FloorChild {
  pid: number;
  url: string;
  caPem: string;
  cpuMs(): number;
  memory(): MemoryReading;
  /** A protocol connection to its inspector (only when started with `inspect`). */
  inspector(): Promise<InspectorClient>;
  stop(): Promise<void>;
}

export async function startFloorChild(options: FloorChildOptions): Promise<FloorChild> {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-floor-'));
  let child: ChildProcess | undefined;
  try {
    const ca = await loadOrCreateCa(join(dir, 'certs'));
    const minter = new LeafMinter(ca);
    const leavesFile = join(dir, 'leaves.json');
    writeFileSync(leavesFile, JSON.stringify(Object.fromEntries(options.hosts.map((h) => [h, minter.mint(h)]))));
    const spawned = spawn(
      process.execPath,
      [
        ...PROXY_NODE_FLAGS,
        ...(options.inspect ? ['--inspect=127.0.0.1:0'] : []),
        FORWARDER,
        JSON.stringify({ upstreamCaFile: options.upstreamCaPath, secret: options.secret, leavesFile }),
      ],
      { env: { PATH: process.env['PATH'] ?? '', ...PROXY_ENV }, stdio: ['ignore', 'inherit', 'pipe'] },
    );
    child = spawned;
    const inspectors: string[] = [];
    spawned.stderr?.on('data', (chunk: Buffer) => inspectors.push(...inspectorUrls(chunk.toString('utf8'))));
    const url = await listeningUrl(spawned);
    const pid = spawned.pid as number;
    return {
      pid,
      url,
      caPem: ca.certPem,
      cpuMs: () => processCpuMs(pid),
      memory: () => readMemory(pid),
      inspector: () => inspectorOf(pid, inspectors),
      stop: async () => {
        if (spawned.exitCode === null && spawned.signalCode === null) {
          const exited = once(spawned, 'exit');
          spawned.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the bare forwarder did not start in ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    child.stderr?.on('data', (chunk: Buffer) => {
      const found = /on (http:\/\/\S+)/.exec(chunk.toString());
      if (found?.[1]) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the bare forwarder exited (${code})`));
    });
  });
}
