// node:http, loaded the CommonJS way. An ESM `import { … } from 'node:http'` reads every export of
// the module, and http.WebSocket, MessageEvent and CloseEvent are lazy getters that load Node's own
// bundled copy of undici (~750 KB of source) just to be listed: ~8 MiB of RSS for the proxy's whole
// life, for nothing it uses (measured on Node 24). Types still come from `import type … 'node:http'`.
// test/integration/proxy-footprint.test.ts fails if that copy of undici gets loaded again.
import { createRequire } from 'node:module';

export const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
