import { describe, expect, it } from 'vitest';
import { OpenExchanges } from '../../src/proxy/open-exchanges.ts';
import { revocation } from '../../src/proxy/stages/open-exchange.ts';
import { ProxyError } from '../../src/errors/index.ts';
import type { StagedRequest } from '../../src/proxy/stages/request.ts';

// The open-exchange books as a list linked through the requests (open-exchanges.ts): what is on
// them, in any order of joining and leaving, and a sweep that ends what no longer stands, including
// when ending one closes another. The revocation cases themselves are tested end to end in
// test/hostile/revocation-open.test.ts.

interface Fake {
  request: StagedRequest;
  revoked: string[];
  /** Makes the request's connection end, so the next sweep revokes it. */
  end(): void;
}

function fakeRequest(onRevoke?: () => void): Fake {
  let reason: string | undefined;
  const revoked: string[] = [];
  const request = {
    grant: { id: 'g' },
    openLink: undefined,
    conn: {
      endReason: () => reason,
      grants: () => ({ kind: 'intercept', candidates: [{ id: 'g' }] }),
      agent: { id: 'agent' },
      target: { host: 'api.example.test' },
    },
    revoke(error: Error) {
      revoked.push(error.message);
      onRevoke?.();
    },
  } as unknown as StagedRequest;
  return {
    request,
    revoked,
    end: () => {
      reason = 'the agent was removed';
    },
  };
}

describe('OpenExchanges', () => {
  it('holds each request once, from add to delete, whatever the order', () => {
    const books = new OpenExchanges(revocation);
    const [a, b, c] = [fakeRequest(), fakeRequest(), fakeRequest()];
    books.add(a.request);
    books.add(b.request);
    books.add(b.request);
    books.add(c.request);
    expect(books.size).toBe(3);
    books.delete(b.request); // the middle
    books.delete(b.request);
    expect(books.size).toBe(2);
    books.delete(c.request); // the newest (the list's head)
    books.delete(a.request); // the last one
    expect(books.size).toBe(0);
    expect([a, b, c].map((f) => f.request.openLink)).toEqual([undefined, undefined, undefined]);
    books.add(a.request);
    expect(books.size).toBe(1);
    expect(books.sweep()).toBe(0);
  });

  it('a sweep ends only what no longer stands, and takes it off the books', () => {
    const books = new OpenExchanges(revocation);
    const fakes = Array.from({ length: 5 }, () => fakeRequest());
    for (const f of fakes) books.add(f.request);
    fakes[0]!.end();
    fakes[2]!.end();
    fakes[4]!.end();
    expect(books.sweep()).toBe(3);
    expect(fakes.map((f) => f.revoked.length)).toEqual([1, 0, 1, 0, 1]);
    expect(fakes[0]!.revoked[0]).toContain('the agent was removed');
    expect(books.size).toBe(2);
    expect(books.sweep()).toBe(0);
    fakes[3]!.end();
    expect(books.sweep()).toBe(1);
    expect(books.size).toBe(1);
  });

  it('a request that ending another closed (its connection went) is not ended twice', () => {
    const books = new OpenExchanges(revocation);
    const second = fakeRequest();
    // Ending the first closes the second, whose close handler takes it off the books.
    const first = fakeRequest(() => books.delete(second.request));
    books.add(second.request);
    books.add(first.request);
    first.end();
    second.end();
    expect(books.sweep()).toBe(1);
    expect(first.revoked).toHaveLength(1);
    expect(second.revoked).toHaveLength(0);
    expect(books.size).toBe(0);
  });

  it('the books name no request: whether one still stands is the judge they were given', () => {
    // A judge that refuses what it was told to: the books end exactly that, with its reason.
    const refused = new Set<StagedRequest>();
    const books = new OpenExchanges<StagedRequest>((request) => (refused.has(request) ? new ProxyError('host_not_allowed', 'judged gone') : undefined));
    const [a, b] = [fakeRequest(), fakeRequest()];
    books.add(a.request);
    books.add(b.request);
    // The connection's end is revocation's reason, not this judge's: nothing is ended for it.
    a.end();
    expect(books.sweep()).toBe(0);
    refused.add(b.request);
    expect(books.sweep()).toBe(1);
    expect([a.revoked, b.revoked]).toEqual([[], ['judged gone']]);
    expect(books.size).toBe(1);
  });
});
