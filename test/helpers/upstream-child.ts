// startUpstream (upstream.ts) in a process of its own, for a network namespace the test process is
// not in (pod-network.ts runs it outside the pod): it listens on HOST PORT, prints
// {"listening":PORT} once it does, then one JSON line per request it sees (method, url, headers).
import { startUpstream } from './upstream.ts';

const [host = '127.0.0.1', port = '0'] = process.argv.slice(2);
const upstream = await startUpstream({
  listen: { host, port: Number(port) },
  handler: (req) => {
    process.stdout.write(`${JSON.stringify({ method: req.method, url: req.url, headers: req.headers })}\n`);
  },
});
process.stdout.write(`${JSON.stringify({ listening: upstream.port })}\n`);
