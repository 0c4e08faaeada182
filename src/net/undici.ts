// The parts of undici keyway uses, loaded from their own files instead of through undici's index.
//
// Why: the index loads every feature undici has (fetch, WebSocket, EventSource, caches, mocks,
// interceptors, SQLite store) and that code stays in memory for the proxy's whole life. Measured on
// Node 24: importing 'undici' adds ~25 MiB of RSS, the dispatcher, Agent and API files ~13 MiB (the
// Agent loads Pool, the errors and the connector below itself). undici publishes no "exports" map,
// so the files are reachable; test/unit/undici.test.ts fails if a release moves them.
// Types still come from undici's own declarations (type-only imports are erased).
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const DispatcherClass = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
// What undici's index does once: the request/stream/pipeline/upgrade/connect methods of every
// dispatcher live in lib/api and are mixed into Dispatcher.prototype.
Object.assign(DispatcherClass.prototype, require('undici/lib/api/index.js'));

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const undiciErrors = require('undici/lib/core/errors.js') as typeof Undici.errors;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
export type Dispatcher = Undici.Dispatcher;

/** A WebSocket constructor whose connection goes through a given dispatcher. */
export type WebSocketVia = new (url: string, init: { dispatcher: Undici.Dispatcher }) => WebSocket;

/**
 * undici's own WebSocket class (the one Node's global WebSocket is, but from this undici, so it takes
 * this undici's dispatchers: egress.proxy, proxy.hosts, proxy.upstream_ca). Loaded at first call
 * only (Slack's Socket Mode), so the proxy's memory never holds the WebSocket code otherwise.
 */
export function webSocketClass(): WebSocketVia {
  return (require('undici/lib/web/websocket/websocket.js') as { WebSocket: WebSocketVia }).WebSocket;
}
export type Connector = Undici.buildConnector.connector;

export type RequestUrlOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path'> & {
  /** Which dispatcher sends it; a shared default Agent when absent. */
  dispatcher?: Undici.Dispatcher | undefined;
};

let defaultAgent: Undici.Agent | undefined;

/** undici's top-level request(url, options), which only the full index exports. */
export function requestUrl(url: string | URL, options: RequestUrlOptions): Promise<Undici.Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const target = new URL(url);
  let via = dispatcher;
  if (via === undefined) {
    defaultAgent ??= new Agent();
    via = defaultAgent;
  }
  return via.request({ ...rest, origin: target.origin, path: `${target.pathname}${target.search}` });
}
