// The one body hold (src/proxy/body-hold.ts): every stage that needs the whole body (a rule's
// max_body, an MCP message, an approval, a signature) reads it through one bounded function,
// refused in the caller's own words, and a second stage asking gets the bytes the first one held.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors/index.ts';
import { boundRefusal, type HoldRefusal, holdWhole } from '../../src/proxy/body-hold.ts';
import type { StagedRequest } from '../../src/proxy/stages/request.ts';

function requestWith(headers: Record<string, string>, budget = Number.POSITIVE_INFINITY) {
  const req = Object.assign(new PassThrough(), { headers, httpVersionMajor: 1, complete: false });
  req.on('end', () => {
    req.complete = true;
  });
  let held = 0;
  const request = {
    req,
    grant: { id: 'g' },
    heldBody: undefined as Buffer | undefined,
    holder: {
      hold: (bytes: number) => {
        if (held + bytes > budget) return false;
        held += bytes;
        return true;
      },
    },
  };
  return { req, request: request as unknown as StagedRequest & typeof request };
}

const refusal: HoldRefusal = {
  over: (seen) => new ProxyError('body_too_large', `over: ${seen}`),
  full: () => new ProxyError('rate_limited', 'full'),
};

describe('holdWhole', () => {
  it('holds a body of undeclared size, keeps it on the request, and hands a second asker the same bytes', async () => {
    const { req, request } = requestWith({ 'transfer-encoding': 'chunked' });
    const first = holdWhole(request, 16, refusal);
    req.end(Buffer.from('hello'));
    const body = await first;
    expect(body.toString()).toBe('hello');
    expect(request.heldBody).toBe(body);
    expect(await holdWhole(request, 16, refusal)).toBe(body);
  });

  it('refuses a declared size over the cap before a byte is read, in the caller’s words', async () => {
    const { req, request } = requestWith({ 'content-length': '17' });
    await expect(holdWhole(request, 16, refusal)).rejects.toMatchObject({ code: 'body_too_large', message: 'over: 17' });
    expect(req.readableFlowing).toBeNull();
  });

  it('refuses past the cap with the bytes seen, and when the memory for held bodies is spent', async () => {
    const over = requestWith({ 'transfer-encoding': 'chunked' });
    const a = holdWhole(over.request, 4, refusal);
    over.req.end(Buffer.from('too long'));
    await expect(a).rejects.toMatchObject({ code: 'body_too_large', message: 'over: 8' });
    expect(over.request.heldBody).toBeUndefined();

    const full = requestWith({ 'transfer-encoding': 'chunked' }, 2);
    const b = holdWhole(full.request, 16, refusal);
    full.req.end(Buffer.from('abc'));
    await expect(b).rejects.toMatchObject({ code: 'rate_limited', message: 'full' });
  });

  it('is empty, reading nothing, when there is no body', async () => {
    const { request } = requestWith({});
    expect((await holdWhole(request, 16, refusal)).length).toBe(0);
    expect(request.heldBody).toBeUndefined();
  });

  it('boundRefusal: 413 naming the setting past the cap, 429 while held-body memory is in use', () => {
    const { request } = requestWith({});
    const words = boundRefusal(request, 10, { why: 'an MCP message is read whole to judge it', bound: 'grants.g.mcp.max_body' });
    expect(words.over(11)).toMatchObject({
      code: 'body_too_large',
      message: 'an MCP message is read whole to judge it, and this body passed grants.g.mcp.max_body (10 bytes)',
      grant: 'g',
    });
    expect(words.full()).toMatchObject({ code: 'rate_limited', retryAfter: 1, grant: 'g' });
  });
});
