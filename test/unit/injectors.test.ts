import { describe, expect, it } from 'vitest';
import { basicInjector, headerInjector, queryInjector, type OutgoingRequest } from '../../src/credentials/injectors/index.ts';
import { injectorFor } from '../../src/credentials/types/index.ts';
import { parseMaterial } from '../../src/credentials/types/index.ts';

const request = (headers: Record<string, string> = {}, path = '/v1/x'): OutgoingRequest => ({ headers: { ...headers }, path });

describe('injectors', () => {
  it('replaces a client-sent header with the formatted secret, even with $ patterns in it', () => {
    const req = request({ authorization: 'Bearer agent-guess' });
    headerInjector('Authorization', 'token {secret}').apply(req, { kind: 'token', value: 'a$&b' });
    expect(req.headers['authorization']).toBe('token a$&b');
  });

  it('one injector, reused across requests, puts on each the secret it is given now (a rotated token, a format with two places)', () => {
    const injector = headerInjector('X-Key', 'k={secret};again={secret}');
    const first = request({ 'x-key': 'agent-guess' });
    injector.apply(first, { kind: 'token', value: 'old-secret-1' });
    const second = request();
    injector.apply(second, { kind: 'token', value: 'new-secret-2' });
    const third = request();
    injector.apply(third, { kind: 'token', value: 'new-secret-2' });
    expect(first.headers['x-key']).toBe('k=old-secret-1;again=old-secret-1');
    expect(second.headers['x-key']).toBe('k=new-secret-2;again=new-secret-2');
    expect(third.headers['x-key']).toBe('k=new-secret-2;again=new-secret-2');
    expect(JSON.stringify([second, third])).not.toContain('old-secret-1');
  });

  it('sets any header, lowercased', () => {
    const req = request({ 'x-api-key': 'placeholder' });
    injectorFor('api_key', { header: 'X-Api-Key' }).apply(req, { kind: 'token', value: 's3cret' });
    expect(req.headers['x-api-key']).toBe('s3cret');
  });

  it('replaces a query parameter, keeping the others', () => {
    const req = request({}, '/maps?key=agent-guess&q=paris');
    queryInjector('key').apply(req, { kind: 'token', value: 'k 1' });
    expect(req.path).toBe('/maps?key=k+1&q=paris');
  });

  it('builds Basic credentials', () => {
    const req = request();
    basicInjector().apply(req, { kind: 'basic', username: 'user', password: 'p:w' });
    expect(req.headers['authorization']).toBe(`Basic ${Buffer.from('user:p:w').toString('base64')}`);
  });

  it('defaults by type, and refuses an api_key grant that says nowhere to go', () => {
    expect(injectorFor('bearer', undefined).describe()).toBe('header Authorization: Bearer {secret}');
    expect(injectorFor('oauth2', undefined).describe()).toBe('header Authorization: Bearer {secret}');
    expect(() => injectorFor('api_key', undefined)).toThrow(/needs/);
  });
});

describe('secret material', () => {
  it('accepts camelCase and snake_case OAuth fields and never quotes the input in errors', () => {
    expect(parseMaterial('oauth2', '{"client_id":"c","refresh_token":"r"}')).toMatchObject({ clientId: 'c', refreshToken: 'r' });
    expect(parseMaterial('basic', '{"username":"u","password":"p"}')).toEqual({ username: 'u', password: 'p' });
    expect(() => parseMaterial('basic', 'not-json-secret')).toThrow(/JSON object/);
    try {
      parseMaterial('basic', 'not-json-secret');
    } catch (err) {
      expect((err as Error).message).not.toContain('not-json-secret');
    }
    expect(() => parseMaterial('bearer', 'two\nlines')).toThrow();
  });
});
