// Node built-ins that the long-running proxy loads the CommonJS way, or only at first use. Every
// module Node loads stays in memory for the process's life (its source pages, bytecode and objects).
//
// An ES `import { … } from 'node:util'` builds the module's namespace, which reads every export, and
// util's lazy ones load modules nobody here uses: worker_threads, Web Locks, the assertion diff,
// SIGINT tracing (~0.6 MiB of RSS in a fresh Node 24). `require` reads only the names asked for.
// src/net/node-http.ts does the same for node:http; test/integration/proxy-footprint.test.ts fails
// if the proxy loads these modules again.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const util = require('node:util') as typeof import('node:util');

let zlibModule: typeof import('node:zlib') | undefined;

/** node:zlib, loaded at first use: only an encoded answer under the leak guard, or a compressed WebSocket message, needs it. */
export function zlib(): typeof import('node:zlib') {
  zlibModule ??= require('node:zlib') as typeof import('node:zlib');
  return zlibModule;
}
