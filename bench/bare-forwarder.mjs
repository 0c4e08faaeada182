// The floor for `npm run bench:floor`: the least an intercepting proxy on keyway's stack (Node,
// node:http, TLS, undici) can do. It answers CONNECT, terminates TLS with a leaf made beforehand,
// sets the Authorization header and streams the exchange through undici to the bench upstream.
// No policy, audit, leak guard, store or minting: what it costs is what the stack itself costs.
// Run as a child by bench/floor.ts; not part of keyway. Plain JavaScript, loaded the way keyway's
// src/net/ loads undici and node:http, so that Node's TypeScript stripping (which keyway's built
// dist/ does not use) adds nothing to its memory.
//
// argv: JSON { upstreamCaFile, secret, leavesFile } where leavesFile maps host -> { certPem, keyPem }.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createSecureContext, rootCertificates, TLSSocket } from 'node:tls';

const require = createRequire(import.meta.url);
const http = require('node:http');
require('undici/lib/dispatcher/dispatcher.js').prototype.stream = require('undici/lib/api/index.js').stream;
const Agent = require('undici/lib/dispatcher/agent.js');

const options = JSON.parse(process.argv[2] ?? '{}');
const leaves = JSON.parse(readFileSync(options.leavesFile, 'utf8'));
const contexts = new Map();
const contextFor = (host) => {
  let context = contexts.get(host);
  const leaf = leaves[host];
  if (!context && leaf) {
    context = createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
    contexts.set(host, context);
  }
  return context;
};

const upstreamTrust = createSecureContext({ ca: [...rootCertificates, readFileSync(options.upstreamCaFile, 'utf8')] });
const agent = new Agent({
  connect: {
    secureContext: upstreamTrust,
    // Every bench host is on loopback, as in keyway's bench config (proxy.hosts).
    lookup: (_host, opts, callback) => (opts.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)),
  },
});

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const strip = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase())));

const inner = http.createServer((req, res) => {
  const headers = { ...strip(req.headers), authorization: `Bearer ${options.secret}` };
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  agent
    .stream(
      { origin: `https://${req.headers.host}`, path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasBody ? req : null },
      ({ statusCode, headers: upstreamHeaders }) => {
        res.writeHead(statusCode, strip(upstreamHeaders));
        return res;
      },
    )
    .catch(() => res.destroy());
});

const outer = http.createServer();
outer.on('connect', (req, socket) => {
  const host = (req.url ?? '').split(':')[0] ?? '';
  const context = contextFor(host);
  if (!context) {
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    return;
  }
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  inner.emit('connection', new TLSSocket(socket, { isServer: true, secureContext: context }));
});
outer.listen(0, '127.0.0.1', () => process.stderr.write(`bare forwarder on http://127.0.0.1:${outer.address().port}\n`));
process.once('SIGTERM', () => process.exit(0));
