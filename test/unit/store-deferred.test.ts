import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openServices } from '../../src/open-home.ts';
import { makeHome } from '../helpers/keyway.ts';

// The command line opens the store with createOnFirstWrite: nothing on disk until a write. Two
// commands racing on a new home each start with a stand-in key; both must end on the one key in
// data/master.key, and neither may lose the other's record.
describe('a store made at its first write', () => {
  it('is not on disk until written, then is', async () => {
    const home = makeHome();
    const services = await openServices({ home, env: {}, createOnFirstWrite: true });
    expect(services.store.get('x')).toBeUndefined();
    expect(existsSync(join(home, 'data'))).toBe(false);
    await services.store.update((d) => d.set('x', { v: 1 }));
    expect(existsSync(join(home, 'data', 'store.json'))).toBe(true);
    const keyText = readFileSync(join(home, 'data', 'master.key'), 'utf8').trim();
    expect(Buffer.from(keyText, 'base64').equals(services.masterKey)).toBe(true);
    // An ordinary open (as the proxy does) reads it with that key.
    const again = await openServices({ home, env: {} });
    expect(again.store.get('x')).toEqual({ v: 1 });
  });

  it('two first writers on one new home agree on one key and keep both records', async () => {
    const home = makeHome();
    const [a, b] = await Promise.all([openServices({ home, env: {}, createOnFirstWrite: true }), openServices({ home, env: {}, createOnFirstWrite: true })]);
    // Different stand-ins: neither had a key to read.
    expect(a.masterKey.equals(b.masterKey)).toBe(false);
    await Promise.all([a.store.update((d) => d.set('from-a', 1)), b.store.update((d) => d.set('from-b', 2))]);
    expect(a.masterKey.equals(b.masterKey)).toBe(true);
    expect(a.auditHeadKey.equals(b.auditHeadKey)).toBe(true);
    const reader = await openServices({ home, env: {} });
    expect(reader.store.get('from-a')).toBe(1);
    expect(reader.store.get('from-b')).toBe(2);
  });

  it('with a key in the environment, uses it and writes no key file', async () => {
    const home = makeHome();
    const key = Buffer.alloc(32, 7).toString('base64');
    const services = await openServices({ home, env: { KEYWAY_MASTER_KEY: key }, createOnFirstWrite: true });
    await services.store.update((d) => d.set('x', 1));
    expect(existsSync(join(home, 'data', 'master.key'))).toBe(false);
    expect((await openServices({ home, env: { KEYWAY_MASTER_KEY: key } })).store.get('x')).toBe(1);
  });
});
