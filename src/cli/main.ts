#!/usr/bin/env node
// The `keyway` executable: wires the real terminal to the command line in index.ts.
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandIO } from './io.ts';
import { nodeTooOldMessage, pinnedNodeFor } from './node-too-old.ts';

const argv = process.argv.slice(2);

// An installed `keyway` runs on whatever `node` the PATH finds first. Before 22 it fails deep in an
// import (undici needs zlib's zstd), and undici 8 asks for 22.19; one line saying what to do is kinder. Checked before the rest
// is imported (below, dynamically), so no import can fail first.
const check = { version: process.version, execPath: process.execPath, root: dirname(dirname(dirname(fileURLToPath(import.meta.url)))), argv };
// A checkout run by an old node (a PATH entry to it, `npm install -g .`): run again on its pinned Node.
const pinned = pinnedNodeFor(check);
if (pinned !== undefined) {
  const again = spawnSync(pinned, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], { stdio: 'inherit' });
  if (again.signal) process.kill(process.pid, again.signal);
  process.exit(again.status ?? 1);
}
const tooOld = nodeTooOldMessage(check);
if (tooOld !== undefined) {
  process.stderr.write(`${tooOld}\n`);
  process.exit(1);
}

const { splitCommandLine } = await import('./global-options.ts');
// `keyway --home DIR start` is a start too: global options may come before the command.
const starts = splitCommandLine(argv).name === 'start';
// Before the rest is imported: it is what the compile cache saves parsing (cli/compile-cache.ts).
// Not for the long-running proxy, which would keep the code it reads back (compile-cache.ts).
const { useCompileCache } = await import('./compile-cache.ts');
if (!starts) useCompileCache(process.env);
const { main } = await import('./index.ts');
const { endQuietlyOnClosedPipe, readAllStdin } = await import('./io.ts');
const { reexecWithProxyRuntime } = await import('./proxy-runtime.ts');
// The proxy runs for days under load: it re-executes itself under its measured runtime settings.
if (starts && !argv.includes('--help') && !argv.includes('-h')) reexecWithProxyRuntime();

// Not for `start`: a proxy must not end because whoever read its first lines went away; it keeps
// serving and drops what it would have printed (pino's own stdout writer does the same on EPIPE).
if (!starts) endQuietlyOnClosedPipe(process.stdout);
else process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined); // a closed stderr has nobody left to tell

const io: CommandIO = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  readStdin: readAllStdin,
  env: process.env,
  terminal: { out: process.stdout.isTTY === true, err: process.stderr.isTTY === true },
};

main(argv, io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`keyway: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
