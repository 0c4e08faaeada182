#!/usr/bin/env node
// The `keyway` executable: wires the real terminal to the command line in index.ts.
import { main } from './index.ts';
import { endQuietlyOnClosedPipe, readAllStdin, type CommandIO } from './io.ts';
import { reexecWithProxyRuntime } from './proxy-runtime.ts';

const argv = process.argv.slice(2);
// The proxy runs for days under load: it re-executes itself under its measured runtime settings.
if (argv[0] === 'start' && !argv.includes('--help') && !argv.includes('-h')) reexecWithProxyRuntime();

// Not for `start`: a proxy must not end because whoever read its first lines went away.
if (argv[0] !== 'start') {
  endQuietlyOnClosedPipe(process.stdout);
  process.stderr.on('error', () => undefined); // a closed stderr has nobody left to tell
}

const io: CommandIO = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  readStdin: readAllStdin,
  env: process.env,
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
