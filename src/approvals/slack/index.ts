import type { Logger } from 'pino';
import type { Config } from '../../config/index.ts';
import { readSecretRef } from '../../config/secret-ref.ts';
import { type Dispatcher, webSocketClass } from '../../net/undici.ts';
import type { ApprovalDesk } from '../desk.ts';
import { answerInteractivity, type InteractivityAnswer } from './http.ts';
import { roomSettings } from './posting.ts';
import { type RoomOptions, SlackRoom } from './room.ts';
import { type SocketMode, startSocketMode } from './socket.ts';
import { slackWebApi } from './web-api.ts';

// approvals.slack put together, in the process that owns the admin listener (a primary, never a
// worker, nor `keyway fetch`'s or `run --contain`'s own keyway): the room posting and updating, and
// the clicks by Socket Mode (mode: socket) or HTTP interactivity on the admin listener (mode: http).
// The tokens and the signing secret are read by reference at each use, so a rotated secret is
// taken without a restart; the mode, the channel's connection and api_url are read at start.

export interface SlackApprovals {
  room: SlackRoom;
  /** POST /slack/interactivity; undefined in Socket Mode (the path answers 404). */
  interactivity:
    | ((request: { rawBody: Buffer; timestamp: string | undefined; signature: string | undefined; client: string }) => Promise<InteractivityAnswer>)
    | undefined;
  stop(): Promise<void>;
}

export interface SlackApprovalsOptions {
  config: () => Config;
  env: NodeJS.ProcessEnv;
  dispatcher: Dispatcher;
  store: RoomOptions['store'];
  desk: Pick<ApprovalDesk, 'get' | 'decide'>;
  logger: Logger;
  now: () => Date;
  /** The audit writer: refused callbacks are lines of their own (refused.ts). */
  audit: RoomOptions['audit'];
}

export function startSlackApprovals(options: SlackApprovalsOptions): SlackApprovals | undefined {
  const first = options.config().approvals.slack;
  if (first === undefined) return undefined;
  const logger = options.logger.child({ component: 'slack-approvals' });
  const slack = () => options.config().approvals.slack;
  const secret = (pick: 'bot_token' | 'signing_secret' | 'app_token') => () => {
    const s = slack() ?? first;
    const ref = s[pick];
    if (ref === undefined) throw new Error(`approvals.slack.${pick} is not set`);
    return readSecretRef(ref, options.env, options.config().home);
  };
  const api = slackWebApi(first.api_url, options.dispatcher);
  const room: SlackRoom = new SlackRoom({
    settings: () => roomSettings(slack()),
    botToken: secret('bot_token'),
    api,
    store: options.store,
    desk: {
      get: (id) => options.desk.get(id),
      decide: (id, asked) => options.desk.decide(id, asked),
    },
    logger,
    now: options.now,
    audit: options.audit,
  });
  room.start();
  let socket: SocketMode | undefined;
  if (first.mode === 'socket') {
    const appToken = secret('app_token');
    socket = startSocketMode({
      open: async () => String((await api.call('apps.connections.open', appToken(), {}))['url']),
      connect: webSocketVia(options.dispatcher),
      onInteractive: (payload) =>
        void room.click(payload, { kind: 'socket' }).catch((err: Error) => logger.warn({ err: { message: err.message } }, 'a click failed')),
      logger,
    });
  }
  const signingSecret = secret('signing_secret');
  return {
    room,
    interactivity: first.mode === 'http' ? (request) => answerInteractivity(room, signingSecret(), request, options.now().getTime(), logger) : undefined,
    async stop() {
      socket?.stop();
      await room.stop();
    },
  };
}

/**
 * Socket Mode's WebSocket, opened through `dispatcher` (the token endpoints': egress.proxy's CONNECT,
 * proxy.hosts, proxy.upstream_ca), as the Web API calls are. undici's own WebSocket, the one Node's
 * global is, from the undici that made the dispatcher; loaded only in mode: socket.
 */
function webSocketVia(dispatcher: Dispatcher): (url: string) => WebSocket {
  const UndiciWebSocket = webSocketClass();
  return (url) => new UndiciWebSocket(url, { dispatcher });
}
