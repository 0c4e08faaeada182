import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AgentLoad, type LoadLimits } from '../../src/proxy/agent-load.ts';
import { readForReplay, type ReplayHolder } from '../../src/proxy/replay-body.ts';

// The counting behind proxy.max_in_flight_per_agent and the replay memory budgets; the proxy's
// use of it (429, streamed bodies, release on every ending) is tested end to end in
// test/integration/agent-load.test.ts and test/hostile/held-bodies.test.ts.

const KiB = 1024;

function load(limits: Partial<LoadLimits> = {}): AgentLoad {
  const all: LoadLimits = { max_in_flight_per_agent: 2, max_replay_memory: 300 * KiB, max_replay_memory_per_agent: 200 * KiB, ...limits };
  return new AgentLoad(() => all);
}

/** A request with these headers whose body arrives in these chunks (an HTTP/1.1 request for hasBody). */
function requestOf(headers: Record<string, string>, chunks: Buffer[]): IncomingMessage {
  return Object.assign(Readable.from(chunks, { objectMode: false }), { headers, httpVersionMajor: 1 }) as unknown as IncomingMessage;
}

/** A holder that records what it was asked and grants up to `room` bytes. */
function holder(room: number): ReplayHolder & { asked: number[]; held: number } {
  return {
    asked: [],
    held: 0,
    hold(bytes) {
      this.asked.push(bytes);
      if (this.held + bytes > room) return false;
      this.held += bytes;
      return true;
    },
  };
}

describe('AgentLoad', () => {
  it('admits an agent up to its limit in flight, others apart, and again once one leaves', () => {
    const l = load();
    const a1 = l.enter('a')!;
    expect(l.enter('a')).toBeDefined();
    expect(l.enter('a')).toBeUndefined();
    expect(l.enter('b')).toBeDefined();
    l.leave(a1);
    expect(l.enter('a')).toBeDefined();
  });

  it('holds within the per-agent and overall budgets, and gives bytes back', () => {
    const l = load();
    const a = l.enter('a')!;
    const b = l.enter('b')!;
    expect(l.hold(a, 150 * KiB)).toBe(true);
    expect(l.hold(a, 100 * KiB)).toBe(false); // a's 200 KiB
    expect(l.hold(b, 150 * KiB)).toBe(true);
    expect(l.hold(b, 1 * KiB)).toBe(false); // 300 KiB overall
    expect(l.heldBytes).toBe(300 * KiB);
    l.release(a, 150 * KiB);
    expect(l.hold(b, 50 * KiB)).toBe(true);
    expect(l.heldBytes).toBe(200 * KiB);
  });

  it('reads its limits at each use, so a reload applies to the next request', () => {
    const limits = { max_in_flight_per_agent: 1, max_replay_memory: 10, max_replay_memory_per_agent: 10 };
    const l = new AgentLoad(() => limits);
    l.enter('a');
    expect(l.enter('a')).toBeUndefined();
    limits.max_in_flight_per_agent = 2;
    expect(l.enter('a')).toBeDefined();
  });
});

describe('readForReplay under a budget', () => {
  const chunk = Buffer.alloc(64 * KiB, 1);

  it('reserves a declared size whole before reading, and streams without reading when refused', async () => {
    const h = holder(100 * KiB);
    const kept = await readForReplay(requestOf({ 'content-length': String(chunk.length) }, [chunk]), h);
    expect(kept.kind).toBe('kept');
    expect(h.asked).toEqual([chunk.length]);
    const req = requestOf({ 'content-length': String(chunk.length) }, [chunk]);
    const streamed = await readForReplay(req, h);
    expect(streamed).toMatchObject({ kind: 'streamed', why: 'budget' });
    expect(streamed.kind === 'streamed' && streamed.stream).toBe(req); // nothing read, nothing buffered
  });

  it('reserves a body of undeclared size as it comes; past the budget sends what it read, then the rest', async () => {
    const h = holder(100 * KiB);
    const body = await readForReplay(requestOf({ 'transfer-encoding': 'chunked' }, [chunk, chunk, chunk]), h);
    expect(body).toMatchObject({ kind: 'streamed', why: 'budget' });
    expect(h.held).toBe(64 * KiB); // the second chunk was refused
    const all: Buffer[] = [];
    if (body.kind === 'streamed') for await (const c of body.stream) all.push(c as Buffer);
    expect(Buffer.concat(all).length).toBe(3 * chunk.length);
  });

  it('still says "size" for a body over the replay limit', async () => {
    const body = await readForReplay(requestOf({ 'content-length': String(2 * 1024 * KiB) }, [chunk]), holder(Number.MAX_SAFE_INTEGER));
    expect(body).toMatchObject({ kind: 'streamed', why: 'size' });
  });
});
