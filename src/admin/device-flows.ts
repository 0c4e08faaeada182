// Device-code flows (RFC 8628) started through the admin API: the start answers at once with the
// user code; polling the token endpoint goes on here, in the background, and GET
// /api/oauth/device/{flow} reports how it went. The grant is stored exactly as `keyway connect
// --device` stores it, and that background write gets its own audit line (the start's line, written
// by the router, says only that a flow began).

import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent } from '../audit/index.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import { AdminError, KeywayError } from '../errors/index.ts';
import type { Dispatcher } from '../net/undici.ts';
import { storeConnection, type ConnectPlan, type ConnectResult } from '../oauth/connect-plan.ts';
import { pollDeviceToken, startDeviceAuthorization } from '../oauth/device-flow.ts';
import type { AdminAuditTarget } from './router.ts';

export interface DeviceFlowView {
  flow: string;
  state: 'pending' | 'connected' | 'failed';
  grant: string;
  provider: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string | null;
  expires_at: string;
  /** Why it failed, in keyway's words (never the provider's raw answer). */
  message?: string;
  /** What was stored, once connected: names and times, never a token. */
  connected?: ConnectResult;
}

export interface DeviceFlowOptions {
  store: CredentialStore;
  dispatcher: Dispatcher;
  /** oauth.token_timeout, read when a flow starts (a reload may change it). */
  tokenTimeoutMs: () => number;
  audit: AdminAuditTarget;
  closing: AbortSignal;
}

/** Flows polling at once; one more is answered 429. */
export const MAX_DEVICE_FLOWS = 8;
/** A finished flow is reported this long, then forgotten. */
const KEEP_FINISHED_MS = 10 * 60_000;
/** However long the provider allows, keyway stops polling after this. */
const MAX_FLOW_MS = 15 * 60_000;

interface Origin {
  client: string;
  host: string;
  port: number;
}

export class DeviceFlows {
  readonly #flows = new Map<string, { view: DeviceFlowView; finishedAt: number | null }>();
  readonly #o: DeviceFlowOptions;

  constructor(options: DeviceFlowOptions) {
    this.#o = options;
  }

  /** Asks the provider for a device code and starts polling for the approval. */
  async start(plan: ConnectPlan, origin: Origin): Promise<DeviceFlowView> {
    this.#sweep();
    const url = plan.provider.deviceAuthorizationUrl;
    if (!url) throw new KeywayError('usage', `provider ${plan.provider.slug} has no device authorization endpoint; use POST /api/oauth/connect`);
    if (this.#o.closing.aborted) throw new AdminError('shutting_down', 'keyway is stopping; start the flow again once it runs');
    const polling = [...this.#flows.values()].filter((f) => f.finishedAt === null).length;
    if (polling >= MAX_DEVICE_FLOWS)
      throw new AdminError('too_many_flows', `${MAX_DEVICE_FLOWS} device flows are waiting for approval already; finish or let one expire`);
    const device = await startDeviceAuthorization(url, plan.endpoint, plan.scopes, this.#o.dispatcher);
    const expiresAt = Math.min(device.expiresAt, Date.now() + MAX_FLOW_MS);
    const view: DeviceFlowView = {
      flow: randomBytes(16).toString('base64url'),
      state: 'pending',
      grant: plan.grantId,
      provider: plan.provider.slug,
      user_code: device.userCode,
      verification_uri: device.verificationUri,
      verification_uri_complete: device.verificationUriComplete ?? null,
      expires_at: new Date(expiresAt).toISOString(),
    };
    const entry = { view, finishedAt: null as number | null };
    this.#flows.set(view.flow, entry);
    const signal = this.#o.closing;
    const startedAt = performance.now();
    void pollDeviceToken(
      plan.endpoint,
      { ...device, expiresAt },
      { dispatcher: this.#o.dispatcher, timeoutMs: this.#o.tokenTimeoutMs(), sleep: (ms) => sleep(ms, undefined, { signal, ref: false }) },
    )
      .then((tokens) => storeConnection(this.#o.store, plan, tokens))
      .then(
        (connected) => {
          entry.view = { ...view, state: 'connected', connected };
          return this.#audit(view, origin, 200, startedAt);
        },
        (err: unknown) => {
          const message = signal.aborted
            ? 'keyway stopped before the flow finished; start it again'
            : err instanceof KeywayError
              ? err.message
              : 'the flow failed; the keyway log has the reason';
          entry.view = { ...view, state: 'failed', message };
          return this.#audit(view, origin, null, startedAt, message);
        },
      )
      .finally(() => {
        entry.finishedAt = Date.now();
      });
    return view;
  }

  get(flow: string): DeviceFlowView | undefined {
    this.#sweep();
    return this.#flows.get(flow)?.view;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, f] of this.#flows) if (f.finishedAt !== null && now - f.finishedAt > KEEP_FINISHED_MS) this.#flows.delete(id);
  }

  async #audit(view: DeviceFlowView, origin: Origin, status: number | null, startedAt: number, message?: string): Promise<void> {
    const event: AuditEvent = {
      ts: new Date().toISOString(),
      id: randomUUID(),
      agent: null,
      grant: view.grant,
      decision: 'admin',
      code: null,
      // Not a request: the background end of the flow POST /api/oauth/device started.
      method: null,
      host: origin.host,
      port: origin.port,
      path: null,
      status,
      duration_ms: Math.round((performance.now() - startedAt) * 100) / 100,
      refreshed: false,
      client: origin.client,
      action: status === 200 ? 'oauth.device.connected' : 'oauth.device.failed',
      ...(message !== undefined ? { message } : {}),
    };
    await this.#o.audit.write(event).catch(() => undefined);
  }
}
