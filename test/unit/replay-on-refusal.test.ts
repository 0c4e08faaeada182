import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import type { IssuedCredential } from '../../src/credentials/issuing/issued-credential.ts';
import type { Grant, RetryAsk } from '../../src/credentials/grant.ts';
import type { Credential } from '../../src/credentials/material.ts';
import type { RequestBody } from '../../src/proxy/replay-body.ts';
import { type RefusableRequest, ReplayFailed, ReplayOnRefusal, WITHHELD_BODY } from '../../src/proxy/driver/replay-on-refusal.ts';

// The replay handler on its own: a fake upstream (a dispatcher answering from a script) under it,
// a recording handler over it (forward()'s place), and a fake credential source beside it.

interface Answer {
  status: number;
  headers?: IncomingHttpHeaders;
  body?: string | Buffer;
}

class FakeController implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

/** An upstream that answers each request with the next answer of its script. */
function fakeUpstream(...script: Answer[]) {
  const sent: Dispatcher.DispatchOptions[] = [];
  const controllers: FakeController[] = [];
  return {
    sent,
    controllers,
    dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      sent.push(options);
      const answer = script.shift();
      if (answer === undefined) throw new Error('the upstream was asked more often than its script says');
      const controller = new FakeController();
      controllers.push(controller);
      queueMicrotask(() => {
        handler.onRequestStart?.(controller, {});
        if (controller.aborted) return;
        handler.onResponseStart?.(controller, answer.status, answer.headers ?? {}, '');
        const body = answer.body === undefined ? undefined : Buffer.from(answer.body);
        // In two chunks, as the wire may cut it.
        if (body !== undefined && body.length > 0) {
          const half = Math.ceil(body.length / 2);
          handler.onResponseData?.(controller, body.subarray(0, half));
          if (body.length > half && !controller.aborted) handler.onResponseData?.(controller, body.subarray(half));
        }
        if (!controller.aborted) handler.onResponseEnd?.(controller, {});
      });
      return true;
    },
  };
}

/** forward()'s side: what the client would get, as the handler over the replay hears it. */
class Client implements Dispatcher.DispatchHandler {
  statuses: number[] = [];
  body = '';
  error: Error | undefined;
  controller: Dispatcher.DispatchController | undefined;
  readonly done: Promise<void>;
  #settle!: () => void;

  constructor() {
    this.done = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }
  onResponseStart(_c: Dispatcher.DispatchController, status: number): void {
    this.statuses.push(status);
  }
  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.body += chunk.toString();
  }
  onResponseEnd(): void {
    this.#settle();
  }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.error = err;
    this.#settle();
  }
}

const token = (value: string): Credential => ({ kind: 'token', value });
const FIRST: IssuedCredential = { credential: token('first-token'), refreshed: false };
const FRESH: IssuedCredential = { credential: token('fresh-token'), refreshed: true };

/** An OAuth grant: a 401 gets a refreshed token and one replay. */
function oauthGrant(retry?: RetryAsk): Grant {
  return { id: 'g', type: 'oauth2', retry, secretCommand: undefined, secretFrom: undefined } as unknown as Grant;
}

/** A grant whose bearer secret a command prints: a 401 runs the command again. */
const commandGrant = { id: 'g', type: 'bearer', retry: undefined, secretCommand: { argv: ['print-secret'] }, secretFrom: undefined } as unknown as Grant;

interface Setup {
  grant?: Grant;
  body?: RequestBody;
  bodySwapped?: boolean;
  /** What the credential source gives after a rejection. */
  again?: IssuedCredential | (() => Promise<IssuedCredential>);
}

function setup(upstream: ReturnType<typeof fakeUpstream>, options: Setup = {}) {
  const rejected: Credential[] = [];
  const resent: IssuedCredential[] = [];
  const event = { refreshed: false } as AuditEvent;
  const again = options.again ?? FRESH;
  const request: RefusableRequest = {
    conn: {
      agent: { id: 'agent-1' },
      issuing: {
        credentials: {
          afterRejection: (_grant: Grant, used: Credential) => {
            rejected.push(used);
            return typeof again === 'function' ? again() : Promise.resolve(again);
          },
        },
      },
    } as unknown as RefusableRequest['conn'],
    grant: options.grant ?? oauthGrant(),
    issued: FIRST,
    path: '/things?page=2',
    body: options.body ?? { kind: 'kept', body: Buffer.from('{"a":1}') },
    bodySwapped: options.bodySwapped ?? false,
    event,
    resend: (issued) => {
      resent.push(issued);
      return { path: '/things?page=2', headers: { authorization: `Bearer ${(issued.credential as { value: string }).value}` } };
    },
  };
  const replay = new ReplayOnRefusal(upstream, request);
  const client = new Client();
  replay.dispatch(
    { origin: 'https://api.example', method: 'POST', path: '/things?page=2', headers: { authorization: 'Bearer first-token' }, body: null },
    client,
  );
  return { client, event, rejected, resent, replay };
}

const REFUSAL = 'refused: the token first-token expired';

describe('ReplayOnRefusal', () => {
  it('withholds a 401, gets a fresh credential and replays once: the client gets the second answer only', async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL }, { status: 200, body: 'the things' });
    const { client, event, rejected, resent } = setup(upstream);
    await client.done;
    expect(upstream.sent).toHaveLength(2);
    expect(rejected).toEqual([FIRST.credential]);
    expect(resent).toEqual([FRESH]);
    expect(upstream.sent[1]).toMatchObject({ origin: 'https://api.example', method: 'POST', headers: { authorization: 'Bearer fresh-token' } });
    expect(client.statuses).toEqual([200]);
    expect(client.body).toBe('the things');
    expect(event).toMatchObject({ refreshed: true, replayed: true });
    expect(event.replay).toBeUndefined();
  });

  it('replays once only: a second 401 goes to the client as it came', async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL }, { status: 401, body: 'still refused' });
    const { client, rejected } = setup(upstream);
    await client.done;
    expect(upstream.sent).toHaveLength(2);
    expect(rejected).toHaveLength(1);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe('still refused');
    expect(client.body).not.toContain('first-token');
  });

  it('passes a 401 that asks for a scope on: a fresh token would lack it too', async () => {
    const upstream = fakeUpstream({ status: 401, headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="write"' }, body: REFUSAL });
    const { client, event, rejected } = setup(upstream);
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(rejected).toEqual([]);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe(REFUSAL);
    expect(event.replayed).toBeUndefined();
  });

  it('passes other answers on untouched', async () => {
    const upstream = fakeUpstream({ status: 403, body: 'no' });
    const { client, rejected } = setup(upstream);
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(rejected).toEqual([]);
    expect(client.statuses).toEqual([403]);
    expect(client.body).toBe('no');
  });

  it('passes a 401 to a request whose body was streamed on, and says why on the audit line', async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL });
    const { client, event, rejected } = setup(upstream, { body: { kind: 'streamed', stream: Readable.from([]), why: 'size' } });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe(REFUSAL);
    expect(event.replay).toBe('skipped: body over 1 MiB');
    // An OAuth token refused on a streamed request is refreshed on the next request's way, not now.
    expect(rejected).toEqual([]);
  });

  it('says a body not kept for want of memory on the line, 401 or not', async () => {
    const upstream = fakeUpstream({ status: 200, body: 'fine' });
    const { client, event } = setup(upstream, { body: { kind: 'streamed', stream: Readable.from([]), why: 'budget' } });
    await client.done;
    expect(client.statuses).toEqual([200]);
    expect(event.replay).toBe('skipped: replay memory full');
  });

  it('passes a 401 to a request whose body carries the token, and renews the token for the next request', async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL });
    const { client, event, rejected } = setup(upstream, { bodySwapped: true });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe(REFUSAL);
    expect(event.replay).toBe('skipped: the body carries the token');
    expect(rejected).toEqual([FIRST.credential]);
  });

  it("follows the type's verdict over the default: `same` replays with the same credential (a DPoP nonce asked for)", async () => {
    const heard: Array<[number, string]> = [];
    const retry: RetryAsk = (status, headers, url) => {
      heard.push([status, url]);
      return status === 401 && headers['dpop-nonce'] !== undefined ? 'same' : undefined;
    };
    const upstream = fakeUpstream({ status: 401, headers: { 'dpop-nonce': 'n-1' }, body: REFUSAL }, { status: 200, body: 'the things' });
    const { client, event, rejected, resent } = setup(upstream, { grant: oauthGrant(retry) });
    await client.done;
    expect(upstream.sent).toHaveLength(2);
    expect(rejected).toEqual([]); // no new token asked for
    expect(resent).toEqual([FIRST]);
    expect(client.statuses).toEqual([200]);
    expect(event.replayed).toBe(true);
    // The type read both answers, the replay's too.
    expect(heard).toEqual([
      [401, 'https://api.example/things?page=2'],
      [200, 'https://api.example/things?page=2'],
    ]);
  });

  it("follows the type's verdict over the default: `relay` passes a 401 on, `fresh` replays another status", async () => {
    const relay = fakeUpstream({ status: 401, body: REFUSAL });
    const relayed = setup(relay, { grant: oauthGrant(() => 'relay') });
    await relayed.client.done;
    expect(relay.sent).toHaveLength(1);
    expect(relayed.client.statuses).toEqual([401]);
    expect(relayed.client.body).toBe(REFUSAL);

    const fresh = fakeUpstream({ status: 400, body: 'bad token' }, { status: 200, body: 'ok' });
    const replayed = setup(fresh, { grant: oauthGrant((status) => (status === 400 ? 'fresh' : undefined)) });
    await replayed.client.done;
    expect(fresh.sent).toHaveLength(2);
    expect(replayed.rejected).toEqual([FIRST.credential]);
    expect(replayed.client.statuses).toEqual([200]);
  });

  it('sends no second request when there is no new credential: the withheld 401 goes to the client, body and all', async () => {
    const upstream = fakeUpstream({ status: 401, headers: { 'content-type': 'text/plain' }, body: REFUSAL });
    const { client, event, resent } = setup(upstream, { grant: commandGrant, again: FIRST });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(resent).toEqual([]);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe(REFUSAL);
    expect(event).toMatchObject({ refreshed: true, replay: 'skipped: the secret command printed the same value' });
    expect(event.replayed).toBeUndefined();
  });

  it('sends no second request within renew_floor either', async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL });
    const { client, event } = setup(upstream, { again: { ...FIRST, floored: true } });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe(REFUSAL);
    expect(event).toMatchObject({ refreshed: false, replay: 'skipped: renewed within renew_floor' });
  });

  it('never sends a refusal too big to keep once more with the refused credential: it goes to the client whole, its upstream paused while the credential is decided', async () => {
    const big = 'x'.repeat(WITHHELD_BODY + 1);
    const upstream = fakeUpstream({ status: 401, body: big });
    const { client } = setup(upstream, { grant: commandGrant, again: FIRST });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(upstream.controllers[0]!.paused).toBe(true);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe(big);
  });

  it('replays a refusal too big to keep when there is a new credential, the refusal dropped', async () => {
    const big = 'x'.repeat(WITHHELD_BODY + 1);
    const upstream = fakeUpstream({ status: 401, body: big }, { status: 200, body: 'the things' });
    const { client, resent } = setup(upstream);
    await client.done;
    expect(upstream.sent).toHaveLength(2);
    expect(resent).toEqual([FRESH]);
    expect(client.statuses).toEqual([200]);
    expect(client.body).toBe('the things');
  });

  it('makes no replay once the client has left', async () => {
    let credentialAsked!: () => void;
    const asked = new Promise<void>((resolve) => {
      credentialAsked = resolve;
    });
    let giveCredential!: (issued: IssuedCredential) => void;
    const upstream = fakeUpstream({ status: 401, body: REFUSAL }, { status: 200, body: 'the things' });
    const { client } = setup(upstream, {
      again: () => {
        credentialAsked();
        return new Promise((resolve) => {
          giveCredential = resolve;
        });
      },
    });
    await asked;
    client.controller!.abort(new Error('the client left'));
    giveCredential(FRESH);
    await new Promise((resolve) => setImmediate(resolve));
    expect(upstream.sent).toHaveLength(1);
    expect(client.statuses).toEqual([]);
  });

  it('fails the answer with the reason when no credential can be had', async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL });
    const refusal = new Error('the token endpoint refused the refresh');
    const { client } = setup(upstream, { again: () => Promise.reject(refusal) });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(client.statuses).toEqual([]);
    expect(client.error).toBeInstanceOf(ReplayFailed);
    expect((client.error as ReplayFailed).reason).toBe(refusal);
  });

  it("hands the client's pause and abort to the upstream request in flight, the replay's too", async () => {
    const upstream = fakeUpstream({ status: 401, body: REFUSAL }, { status: 200, body: 'the things' });
    const { client } = setup(upstream);
    await client.done;
    client.controller!.pause();
    expect(upstream.controllers[1]?.paused).toBe(true);
    client.controller!.abort(new Error('gone'));
    expect(upstream.controllers[1]?.aborted).toBe(true);
    expect(upstream.controllers[0]?.aborted).toBe(false);
  });
});

// issuer × retry × status. A type's verdict binds whoever issues the credential: `same` (the same
// credential signed anew: a DPoP nonce, an HTTP Digest challenge) replays any grant; `fresh` and
// keyway's default replay only a grant that gets a new credential after a refusal; every other
// answer goes to the client as it came, its body with it, the upstream asked once.
type Issuer = 'renews' | 'holds' | 'signs-fetched';
type Retry = 'absent' | 'none' | 'same' | 'fresh' | 'relay';
const ISSUERS: Record<Issuer, { grant: (retry: RetryAsk | undefined) => Grant; again: IssuedCredential }> = {
  // An OAuth grant: a refusal gets a refreshed token.
  renews: { grant: oauthGrant, again: FRESH },
  // A bearer token keyway holds: nothing newer (the credential source gives the refused one back, floored).
  holds: {
    grant: (retry) => ({ id: 'g', type: 'bearer', retry, secretCommand: undefined, secretFrom: undefined }) as unknown as Grant,
    again: { ...FIRST, floored: true },
  },
  // An hmac key a command prints: a signing type's secret is not fetched again after a refusal (refetchReplays false).
  'signs-fetched': {
    grant: (retry) => ({ id: 'g', type: 'hmac', retry, secretCommand: { argv: ['print-key'] }, secretFrom: undefined }) as unknown as Grant,
    again: FRESH,
  },
};
const VERDICTS: Record<Retry, RetryAsk | undefined> = {
  absent: undefined,
  none: () => undefined,
  same: () => 'same',
  fresh: () => 'fresh',
  relay: () => 'relay',
};
const TABLE: Array<[Issuer, Retry, number, 'replayed' | 'as it came']> = [
  ['renews', 'absent', 200, 'as it came'],
  ['renews', 'absent', 401, 'replayed'],
  ['renews', 'none', 200, 'as it came'],
  ['renews', 'none', 401, 'replayed'],
  ['renews', 'same', 200, 'replayed'],
  ['renews', 'same', 401, 'replayed'],
  ['renews', 'fresh', 200, 'replayed'],
  ['renews', 'fresh', 401, 'replayed'],
  ['renews', 'relay', 200, 'as it came'],
  ['renews', 'relay', 401, 'as it came'],
  ['holds', 'absent', 200, 'as it came'],
  ['holds', 'absent', 401, 'as it came'],
  ['holds', 'none', 200, 'as it came'],
  ['holds', 'none', 401, 'as it came'],
  ['holds', 'same', 200, 'replayed'],
  ['holds', 'same', 401, 'replayed'],
  ['holds', 'fresh', 200, 'as it came'],
  ['holds', 'fresh', 401, 'as it came'],
  ['holds', 'relay', 200, 'as it came'],
  ['holds', 'relay', 401, 'as it came'],
  ['signs-fetched', 'absent', 200, 'as it came'],
  ['signs-fetched', 'absent', 401, 'as it came'],
  ['signs-fetched', 'none', 200, 'as it came'],
  ['signs-fetched', 'none', 401, 'as it came'],
  ['signs-fetched', 'same', 200, 'replayed'],
  ['signs-fetched', 'same', 401, 'replayed'],
  ['signs-fetched', 'fresh', 200, 'as it came'],
  ['signs-fetched', 'fresh', 401, 'as it came'],
  ['signs-fetched', 'relay', 200, 'as it came'],
  ['signs-fetched', 'relay', 401, 'as it came'],
];

describe('ReplayOnRefusal: issuer × retry × status', () => {
  it.each(TABLE)('a grant that %s, its type saying %s, a %i: %s', async (issuer, retry, status, outcome) => {
    const { grant, again } = ISSUERS[issuer];
    const upstream = fakeUpstream({ status, body: 'the first answer' }, { status: 200, body: 'the second answer' });
    const { client, event, rejected, resent } = setup(upstream, { grant: grant(VERDICTS[retry]), again });
    await client.done;
    if (outcome === 'replayed') {
      expect(upstream.sent).toHaveLength(2);
      expect(client.statuses).toEqual([200]);
      expect(client.body).toBe('the second answer');
      // `same` sends the credential it has; anything else a new one.
      expect(rejected).toEqual(retry === 'same' ? [] : [FIRST.credential]);
      expect(resent).toEqual([retry === 'same' ? FIRST : again]);
      expect(event.replayed).toBe(true);
    } else {
      expect(upstream.sent).toHaveLength(1);
      expect(client.statuses).toEqual([status]);
      expect(client.body).toBe('the first answer');
      expect(rejected).toEqual([]);
      expect(event.replayed).toBeUndefined();
      expect(event.replay).toBeUndefined();
    }
  });

  it('says why a `same` could not be answered for a held secret when the body was streamed on', async () => {
    const upstream = fakeUpstream({ status: 401, body: 'answer the challenge' });
    const { client, event, rejected } = setup(upstream, {
      grant: ISSUERS.holds.grant(() => 'same'),
      body: { kind: 'streamed', stream: Readable.from([]), why: 'budget' },
    });
    await client.done;
    expect(upstream.sent).toHaveLength(1);
    expect(client.statuses).toEqual([401]);
    expect(client.body).toBe('answer the challenge');
    expect(event.replay).toBe('skipped: replay memory full');
    expect(rejected).toEqual([]);
  });
});
