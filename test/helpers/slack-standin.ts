// A loopback stand-in of Slack, as keyway's Slack approvals meet it (issue 90):
// - the Web API (`chat.postMessage`, `chat.update`, `chat.postEphemeral` with the bot token;
//   `apps.connections.open` with the app-level token), answering `{ok: false, error:
//   "invalid_auth"}` to any other token, as Slack does;
// - Socket Mode: a WebSocket server at the URL apps.connections.open hands out, which says `hello`,
//   sends `interactive` envelopes and records which envelope ids the client acknowledged;
// - a person's click: a `block_actions` payload built as Slack builds it, delivered by Socket Mode
//   or POSTed to an HTTP interactivity URL, signed (`v0`) with the signing secret or otherwise.
// Every body keyway sent is kept whole (`received`), so a test can look for a canary in it.
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export interface SlackMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: SlackBlock[];
  /** How many times chat.update rewrote it. */
  updates: number;
}

export interface SlackBlock {
  type: string;
  block_id?: string;
  text?: { type: string; text: string };
  elements?: Array<{ type: string; action_id?: string; value?: string; text?: { text: string }; style?: string }>;
  fields?: Array<{ type: string; text: string }>;
}

export interface Ephemeral {
  channel: string;
  user: string;
  text: string;
}

export interface Click {
  /** The Slack user id of whoever clicked. */
  user: string;
  /** The message clicked on (its ts), and the button's action_id; its value is read from the message. */
  ts: string;
  action: string;
  /** Override the button's value (a forged or stale button). */
  value?: string;
  channel?: string;
}

export interface SlackStandin {
  /** The Web API's base, with its trailing slash: what approvals.slack.api_url is set to. */
  apiUrl: string;
  /** Every Web API call: its method, the token it carried and its JSON body, in order. */
  calls: Array<{ method: string; token: string | undefined; body: Record<string, unknown> }>;
  /** Every request body keyway sent, as text (for canary checks). */
  received: string[];
  messages: Map<string, SlackMessage>;
  ephemerals: Ephemeral[];
  /** Modals opened (views.open), in order. */
  views: Array<{ trigger_id: string; view: Record<string, unknown> }>;
  /** The view_submission payload Slack would send when `user` submits modal `view` with this reason. */
  viewSubmission(view: Record<string, unknown>, user: string, reason: string): Record<string, unknown>;
  /** Envelope ids the Socket Mode client acknowledged. */
  acked: Set<string>;
  /** Socket Mode connections open now. */
  sockets(): number;
  /** Milliseconds to wait before answering a Web API method (a slow Slack), by method name. */
  delays: Record<string, number>;
  /** While true, every Web API call is answered 503 and no socket is accepted (Slack is down). */
  down: boolean;
  /** The block_actions payload Slack would send for this click. */
  blockActions(click: Click): Record<string, unknown>;
  /** Delivers a click by Socket Mode; resolves to the envelope id (acknowledged or not: see `acked`). */
  clickBySocket(click: Click | Record<string, unknown>): string;
  /** POSTs a click to an interactivity URL, signed as Slack signs it unless told otherwise. */
  clickByHttp(
    url: string,
    click: Click | Record<string, unknown>,
    options?: { secret?: string; timestamp?: number; rawBody?: string; signature?: string },
  ): Promise<{ status: number; text: string; rawBody: string; timestamp: number; signature: string }>;
  /** Every TCP connection the stand-in accepted (Web API and Socket Mode alike), by the peer's port. */
  connections(): Array<{ remotePort: number | undefined }>;
  /** Ends every Socket Mode connection as Slack does before a refresh. */
  disconnectSockets(): void;
  close(): Promise<void>;
}

export function slackSignature(secret: string, timestamp: number, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

export async function startSlackStandin(options: { botToken: string; appToken: string; signingSecret: string }): Promise<SlackStandin> {
  const calls: SlackStandin['calls'] = [];
  const received: string[] = [];
  const messages = new Map<string, SlackMessage>();
  const ephemerals: Ephemeral[] = [];
  const acked = new Set<string>();
  const views: SlackStandin['views'] = [];
  let seq = 0;
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;

  const server: Server = createServer((req, res) => void answer(req, res));
  const accepted: Array<{ remotePort: number | undefined }> = [];
  server.on('connection', (socket) => accepted.push({ remotePort: socket.remotePort }));
  const wss = new WebSocketServer({ noServer: true });
  const tickets = new Set<string>();
  server.on('upgrade', (req, socket, head) => {
    const ticket = new URL(req.url ?? '/', 'http://x').searchParams.get('ticket') ?? '';
    if (standin.down || !req.url?.startsWith('/link') || !tickets.delete(ticket)) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ type: 'hello', num_connections: wss.clients.size, connection_info: { app_id: 'A0STANDIN' } }));
      ws.on('message', (data) => {
        try {
          const message = JSON.parse(data.toString()) as { envelope_id?: unknown };
          if (typeof message.envelope_id === 'string') acked.add(message.envelope_id);
        } catch {
          // Not JSON: Slack ignores it too.
        }
      });
    });
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    received.push(text);
    const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
    if (standin.down) return reply(res, 503, { ok: false, error: 'service_unavailable' });
    let body: Record<string, unknown> = {};
    try {
      body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      return reply(res, 200, { ok: false, error: 'invalid_json' });
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    calls.push({ method, token, body });
    const delay = standin.delays[method];
    if (delay !== undefined) await new Promise((resolve) => setTimeout(resolve, delay));
    const wanted = method === 'apps.connections.open' ? options.appToken : options.botToken;
    if (token === undefined) return reply(res, 200, { ok: false, error: 'not_authed' });
    if (token !== wanted) return reply(res, 200, { ok: false, error: 'invalid_auth' });
    switch (method) {
      case 'apps.connections.open': {
        const ticket = randomUUID();
        tickets.add(ticket);
        return reply(res, 200, { ok: true, url: `ws://127.0.0.1:${port}/link/?ticket=${ticket}` });
      }
      case 'chat.postMessage': {
        if (typeof body['channel'] !== 'string') return reply(res, 200, { ok: false, error: 'channel_not_found' });
        const ts = nextTs();
        messages.set(ts, { channel: body['channel'], ts, text: String(body['text'] ?? ''), blocks: (body['blocks'] ?? []) as SlackBlock[], updates: 0 });
        return reply(res, 200, { ok: true, channel: body['channel'], ts });
      }
      case 'chat.update': {
        const found = messages.get(String(body['ts']));
        if (!found || found.channel !== body['channel']) return reply(res, 200, { ok: false, error: 'message_not_found' });
        found.text = String(body['text'] ?? found.text);
        if (Array.isArray(body['blocks'])) found.blocks = body['blocks'] as SlackBlock[];
        found.updates++;
        return reply(res, 200, { ok: true, channel: found.channel, ts: found.ts });
      }
      case 'views.open': {
        if (typeof body['trigger_id'] !== 'string' || typeof body['view'] !== 'object') return reply(res, 200, { ok: false, error: 'invalid_arguments' });
        views.push({ trigger_id: body['trigger_id'], view: body['view'] as Record<string, unknown> });
        return reply(res, 200, { ok: true, view: { id: `V${views.length}` } });
      }
      case 'chat.postEphemeral': {
        ephemerals.push({ channel: String(body['channel']), user: String(body['user']), text: String(body['text'] ?? '') });
        return reply(res, 200, { ok: true, message_ts: nextTs() });
      }
      default:
        return reply(res, 200, { ok: false, error: 'unknown_method' });
    }
  }

  function blockActions(click: Click): Record<string, unknown> {
    const message = messages.get(click.ts);
    const button = message?.blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === click.action);
    const channel = click.channel ?? message?.channel ?? 'C0UNKNOWN';
    return {
      type: 'block_actions',
      user: { id: click.user, username: click.user.toLowerCase(), name: click.user.toLowerCase(), team_id: 'T0STANDIN' },
      api_app_id: 'A0STANDIN',
      token: 'deprecated-verification-token',
      container: { type: 'message', message_ts: click.ts, channel_id: channel, is_ephemeral: false },
      trigger_id: `${Date.now()}.trigger`,
      team: { id: 'T0STANDIN', domain: 'standin' },
      channel: { id: channel, name: 'approvals' },
      message: message ? { type: 'message', ts: message.ts, text: message.text, blocks: message.blocks } : { ts: click.ts },
      response_url: `http://127.0.0.1:${port}/respond/${randomUUID()}`,
      actions: [
        {
          action_id: click.action,
          block_id: 'keyway-answer',
          text: { type: 'plain_text', text: button?.text?.text ?? click.action },
          value: click.value ?? button?.value ?? '',
          type: 'button',
          action_ts: `${Date.now() / 1000}`,
        },
      ],
    };
  }

  const payloadOf = (click: Click | Record<string, unknown>) => ('action' in click && 'ts' in click ? blockActions(click as Click) : click);

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const standin: SlackStandin = {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    received,
    messages,
    ephemerals,
    views,
    delays: {},
    viewSubmission(view, user, reason) {
      const at = views.findIndex((v) => v.view === view);
      return {
        type: 'view_submission',
        user: { id: user, username: user.toLowerCase(), team_id: 'T0STANDIN' },
        api_app_id: 'A0STANDIN',
        trigger_id: `${Date.now()}.trigger`,
        view: {
          ...view,
          id: `V${at + 1}`,
          state: { values: { reason: { reason: { type: 'plain_text_input', value: reason } } } },
        },
      };
    },
    acked,
    down: false,
    sockets: () => wss.clients.size,
    connections: () => [...accepted],
    blockActions,
    clickBySocket(click) {
      const envelope_id = randomUUID();
      const envelope = JSON.stringify({ envelope_id, type: 'interactive', accepts_response_payload: false, payload: payloadOf(click) });
      for (const ws of wss.clients) ws.send(envelope);
      return envelope_id;
    },
    async clickByHttp(url, click, opts = {}) {
      const rawBody = opts.rawBody ?? `payload=${encodeURIComponent(JSON.stringify(payloadOf(click)))}`;
      const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
      const signature = opts.signature ?? slackSignature(opts.secret ?? options.signingSecret, timestamp, rawBody);
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': signature },
        body: rawBody,
      });
      return { status: res.status, text: await res.text(), rawBody, timestamp, signature };
    },
    disconnectSockets() {
      for (const ws of wss.clients as Set<WebSocket>) {
        ws.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested' }));
        ws.close();
      }
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return standin;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
