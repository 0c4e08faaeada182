import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import { readSecretRef } from '../config/secret-ref.ts';
import { type Dispatcher, requestUrl } from '../net/undici.ts';
import type { ApprovalRecord } from './record.ts';

// approvals.notify: each new pending approval is POSTed as JSON to a URL the operator chose (a chat
// webhook, a pager). The URL may itself be a secret (a Slack webhook's is), so it may be given as a
// reference, and it is never logged: a failure names the host only. Fire and forget, bounded: a
// receiver that is slow or down costs at most MAX_IN_FLIGHT requests of NOTIFY_TIMEOUT_MS each.

const NOTIFY_TIMEOUT_MS = 5_000;
const MAX_IN_FLIGHT = 16;

export interface NotifyOptions {
  config: () => Config;
  env: NodeJS.ProcessEnv;
  /** The token-endpoint client: proxy.hosts and proxy.upstream_ca apply, the agents' egress policy does not. */
  dispatcher: Dispatcher;
  logger: Logger;
}

/** What the receiver gets: the approval as a person needs it to decide, and how to answer. */
export function notification(record: ApprovalRecord): Record<string, unknown> {
  return {
    type: 'keyway.approval.pending',
    approval: {
      id: record.id,
      agent: record.agent,
      // A delegated agent's: who it acts for, root first (absent for a root agent).
      ...(record.chain !== undefined ? { chain: record.chain } : {}),
      grant: record.grant,
      rule: record.rule,
      method: record.method,
      host: record.host,
      path: record.path,
      purpose: record.purpose,
      body: record.body === null ? null : { bytes: record.body.bytes, type: record.body.type, preview: record.body.preview },
      asked_at: record.asked_at,
      expires_at: record.expires_at,
      held: record.holder !== null,
      window_ms: record.window_ms,
    },
    answer: { approve: `keyway approvals approve ${record.id}`, deny: `keyway approvals deny ${record.id}`, api: `/api/approvals/${record.id}` },
  };
}

export function approvalNotifier(options: NotifyOptions): (record: ApprovalRecord) => void {
  const post = notifyPoster(options);
  return (record) => post(notification(record), { approval: record.id });
}

/**
 * Posts one JSON notification to approvals.notify, if set: fire and forget, bounded. `about` names
 * what it is about in the app log (an approval's id, a budget's name), never the URL.
 */
export function notifyPoster(options: NotifyOptions): (payload: Record<string, unknown>, about: Record<string, string>) => void {
  let inFlight = 0;
  return (payload, about) => {
    const target = options.config().approvals.notify;
    if (target === undefined) return;
    let url: URL;
    try {
      url = new URL(typeof target === 'string' ? target : readSecretRef(target, options.env, options.config().home));
    } catch (err) {
      options.logger.warn({ ...about, err: { message: (err as Error).message } }, 'approvals.notify could not be read; nothing was sent');
      return;
    }
    if (inFlight >= MAX_IN_FLIGHT) {
      options.logger.warn({ ...about, host: url.host }, 'approvals.notify: too many notifications in flight; this one was not sent');
      return;
    }
    inFlight++;
    requestUrl(url, {
      method: 'POST',
      dispatcher: options.dispatcher,
      headers: { 'content-type': 'application/json', 'user-agent': 'keyway' },
      body: JSON.stringify(payload),
      headersTimeout: NOTIFY_TIMEOUT_MS,
      bodyTimeout: NOTIFY_TIMEOUT_MS,
    })
      .then(async (answer) => {
        await answer.body.dump();
        if (answer.statusCode >= 300) options.logger.warn({ ...about, host: url.host, status: answer.statusCode }, 'approvals.notify answered with an error');
      })
      .catch((err: Error) =>
        options.logger.warn({ ...about, host: url.host, err: { code: (err as NodeJS.ErrnoException).code ?? err.name } }, 'approvals.notify failed'),
      )
      .finally(() => inFlight--);
  };
}
