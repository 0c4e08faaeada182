// Loopback stand-ins for the model vendors' APIs and their logins, for tests that run real clients
// (the agent CLIs, the official SDKs) against something that speaks the vendor's wire format and checks
// its credential. Start one HTTPS server (server.ts) with the handlers a test needs; each handler answers
// for its vendor's host name (map it with keyway's `proxy.hosts`, or give `host: 'localhost'` to dial it
// directly), records every request in `server.seen`, and takes the reply text and token counts from a
// `reply` (fixed, or a function of the request: replies.ts), so a test can meter what it set.
export * from './anthropic.ts';
export * from './chatgpt-backend.ts';
export * from './chatgpt-login.ts';
export * from './code-assist.ts';
export * from './gemini.ts';
export * from './google-login.ts';
export * from './jwt.ts';
export * from './openai.ts';
export * from './replies.ts';
export * from './server.ts';
export * from './token-endpoint.ts';
