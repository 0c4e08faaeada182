// Runs a container of the keyway image as a local process: there is no container engine here. A
// temporary folder stands in for the image's WORKDIR, filled as the final stage's COPY lines fill it
// (the build stage's output is a runnable copy of this checkout's dist/ and production node_modules/); each volume is a folder;
// the container's paths in argv and environment become those folders, and its listen addresses
// become free loopback ports. The command is the image's ENTRYPOINT + CMD (or the args that replace
// CMD), run from the WORKDIR with the image's ENV under the container's, like Docker does.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO, type ImageSpec } from './deploy-files.ts';
import { runnableKeyway } from './runnable-copy.ts';
import { slack } from './load.ts';

export interface ContainerFs {
  /** The host folder standing in for the image's WORKDIR. */
  app: string;
  /** Container path -> host path, for every mount (under WORKDIR too: those are placed inside `app`). */
  mounts: Record<string, string>;
}

/** Puts what the final stage copies into `app`. */
export function fillImageRoot(image: ImageSpec, app: string, buildWorkdir = '/app'): void {
  for (const { from, src, dest } of image.copies) {
    const target = join(app, dest.endsWith('/') ? join(dest, basename(src)) : dest);
    mkdirSync(dirname(target), { recursive: true });
    // A folder from the build context is copied whole, as COPY does (deploy/transparent).
    if (from === undefined) cpSync(join(REPO, src), target, { recursive: true });
    // The build stage's output (dist/, the production node_modules): keyway's runnable copy, which
    // the image's user can read wherever this checkout was cloned (helpers/runnable-copy.ts).
    else if (src.startsWith(`${buildWorkdir}/`)) symlinkSync(join(runnableKeyway().root, src.slice(buildWorkdir.length + 1)), target);
    else throw new Error(`COPY --from=${from} ${src}: only the build stage's ${buildWorkdir} is known`);
  }
}

/** The host path for a container path: the longest mount that holds it, else the image root. */
export function hostPath(fs: ContainerFs, workdir: string, path: string): string | undefined {
  const within = (base: string) => path === base || path.startsWith(`${base}/`);
  const mount = Object.keys(fs.mounts)
    .filter(within)
    .sort((a, b) => b.length - a.length)[0];
  if (mount !== undefined) return fs.mounts[mount] + path.slice(mount.length);
  if (within(workdir)) return fs.app + path.slice(workdir.length);
  return undefined;
}

export interface ContainerProcess {
  child: ChildProcess;
  /** Container port -> the loopback port it listens on here. */
  ports: Record<number, number>;
  argv: string[];
  output(): string;
  stop(): Promise<number | null>;
}

export interface ContainerOptions {
  image: ImageSpec;
  fs: ContainerFs;
  /** Replaces the image's CMD (Kubernetes `args`, compose `command`). */
  args?: string[] | undefined;
  env: Record<string, string>;
  /** Container port -> a free loopback port, for each HOST:PORT argument (none when it runs in a namespace of its own). */
  ports: Record<number, number>;
  home: string;
  /**
   * Where the container's processes run, for one that has a network namespace (and user) of its
   * own: the whole argv that runs `argv` there with exactly `env` (pod-network.ts's argv). Unset:
   * here, as the test's own user.
   */
  inside?: (argv: string[], env: Record<string, string>) => string[];
}

function launch(options: ContainerOptions, argv: string[], env: Record<string, string>): ChildProcess {
  const [command, ...args] = options.inside ? options.inside(argv, env) : argv;
  return spawn(command!, args, { cwd: options.fs.app, ...(options.inside ? {} : { env }), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The argv and environment the container's command runs with here. */
export function containerCommand(options: ContainerOptions): { argv: string[]; env: Record<string, string> } {
  const { image, fs } = options;
  const toHost = (value: string) => (value.startsWith('/') ? (hostPath(fs, image.workdir, value) ?? value) : value);
  const toLoopback = (value: string) =>
    value.replace(/^(?:0\.0\.0\.0|127\.0\.0\.1|\[::\]):(\d+)$/, (all, port: string) => {
      const local = options.ports[Number(port)];
      return local === undefined ? all : `127.0.0.1:${local}`;
    });
  const argv = [...image.entrypoint, ...(options.args ?? image.cmd)].map((a) => toLoopback(toHost(a)));
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...image.env, ...options.env })) env[name] = toHost(value);
  // The image's node is on its PATH; here that is the runnable copy's Node 24 (the one running the
  // tests, or a copy of it the container's user may run wherever this checkout is).
  env['PATH'] = `${dirname(runnableKeyway().node)}:/usr/bin:/bin`;
  env['HOME'] = options.home;
  return { argv, env };
}

/** Starts the container's command and resolves once keyway says it listens. */
export async function startContainer(options: ContainerOptions): Promise<ContainerProcess> {
  const { argv, env } = containerCommand(options);
  const child = launch(options, argv, env);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const startMs = slack(20_000, 90_000); // a wait on the start: patient on a busy machine
    const timer = setTimeout(() => reject(new Error(`the container did not start in ${startMs} ms: ${output}`)), startMs);
    const onData = () => {
      if (!output.includes('keyway proxy on')) return;
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`the container exited with ${code}: ${output}`));
    };
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
  return {
    child,
    ports: options.ports,
    argv,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/** Another command in the same container (`docker compose exec`, `kubectl exec`), through the image's entrypoint. */
export function execInContainer(options: ContainerOptions, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { argv, env } = containerCommand({ ...options, args });
  const child = launch(options, argv, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return once(child, 'close').then(([code]) => {
    clearTimeout(timer);
    return { code: code as number | null, stdout, stderr };
  });
}
