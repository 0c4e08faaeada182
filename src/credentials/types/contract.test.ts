import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { GrantType } from '../../config/index.ts';
import { loadClientCertificate } from '../client-certificate.ts';
import type { Grant } from '../grant.ts';
import type { OutgoingRequest } from '../injectors/index.ts';
import type { Credential, SecretMaterial } from '../material.ts';
import { EXAMPLES } from './examples.ts';
import { GRANT_TYPE_FIELDS } from './fields.ts';
import { type KindFields, KINDS, kindOf, type MintWith, oauthMaterialOf, parseMaterial, usableMaterial } from './index.ts';

// The contract every registered type keeps, walked from its own example (<type>/example.ts): its
// secret parses into usable material and a blank one is refused; its issuer gives a credential (or
// says what it needs to); its wire puts it on a request, signs with it, or presents it on the
// connection; and the listing describes it. A type added without one of these fails here.

const TYPES = Object.keys(KINDS) as GrantType[];

/** The example's own keys, through the type's schema (defaults filled in, as the config's grant has them). */
function fieldsOf(type: GrantType): KindFields {
  const fields = z.object(GRANT_TYPE_FIELDS[type].shape).parse(EXAMPLES[type].fields) as KindFields;
  const problems: string[] = [];
  const check = (GRANT_TYPE_FIELDS[type] as { check?: (grant: KindFields, fail: (key: string, message: string) => void) => void }).check;
  check?.(fields, (key, message) => problems.push(`${key}: ${message}`));
  expect(problems).toEqual([]);
  return fields;
}

/** A grant of the type as its kind compiles it (what the request path hands the issuer). */
function grantOf(type: GrantType, material: SecretMaterial | undefined): Grant {
  const settings = kindOf(type).compile(fieldsOf(type));
  return { id: `example-${type}`, type, status: 'active', source: 'store', material, settings: undefined, ...settings } as unknown as Grant;
}

/** The example's secret, parsed; undefined: the type has none. */
function materialOf(type: GrantType): SecretMaterial | undefined {
  const secret = EXAMPLES[type].secret;
  return secret === null ? undefined : parseMaterial(type, secret());
}

/** What the type's issuer gives for the example (an OAuth or per-request issuer's token stands in as one). */
async function issue(type: GrantType, material: SecretMaterial | undefined): Promise<Credential | undefined> {
  const issuer = KINDS[type].issuer;
  const grant = grantOf(type, material);
  switch (issuer.by) {
    case 'material':
      return material === undefined ? undefined : issuer.credential(material);
    case 'oauth':
      // What the token manager refreshes with: the secret read as OAuth material.
      expect(oauthMaterialOf(type, material)).toBeDefined();
      return { kind: 'token', value: 'issued-access-token' };
    case 'minted': {
      const boundKey = EXAMPLES[type].boundKey?.();
      // As MintedTokens does with a minter and its spec, short of the token endpoint: a spec it can describe and key.
      const mint: MintWith = async (minter, spec) => {
        expect(minter.describe(spec)).toEqual(expect.any(String));
        expect(minter.fingerprint(spec)).toEqual(expect.any(String));
        return { token: 'minted-token', refreshed: true, boundKey };
      };
      const minted = await issuer.token(grant, material!, mint);
      expect(minted?.token).toBe('minted-token');
      return issuer.credential(grant, minted!.token, undefined, boundKey);
    }
    case 'request': {
      // Each request's token comes from its endpoint; with no client to ask as, it refuses before asking.
      const context = { dispatcher: undefined, timeoutMs: 1000, env: {}, home: '/nonexistent' };
      await expect(issuer.issue(grant, undefined, { agent: 'example', identityToken: undefined }, context)).rejects.toMatchObject({ code: 'grant_no_secret' });
      return { kind: 'token', value: 'issued-access-token' };
    }
  }
}

describe.each(TYPES)('the %s type, from its example', (type) => {
  const kind = KINDS[type];
  const example = EXAMPLES[type];

  it('parses its secret into usable material, and refuses one left blank', () => {
    const blankRefused = (() => {
      try {
        return !usableMaterial(type, parseMaterial(type, example.blank));
      } catch {
        return true;
      }
    })();
    expect(blankRefused).toBe(true);
    const material = materialOf(type);
    if (example.secret === null) {
      expect(() => parseMaterial(type, 'anything')).toThrow(kind.shape);
      return;
    }
    expect(usableMaterial(type, material)).toBe(true);
  });

  it('issues a credential, as its issuer says', async () => {
    const credential = await issue(type, materialOf(type));
    if (example.secret !== null) expect(credential).toBeDefined();
  });

  it('goes on the request as its wire says', async () => {
    const material = materialOf(type);
    const injector = kind.wire.injector(example.inject);
    const credential = await issue(type, material);
    switch (kind.wire.by) {
      case 'inject': {
        if (example.secret === null) return; // no secret of its own (login_capture): nothing to put on
        const request: OutgoingRequest = { headers: {}, path: '/' };
        injector.apply(request, credential!);
        expect(JSON.stringify(request)).not.toBe(JSON.stringify({ headers: {}, path: '/' }));
        return;
      }
      case 'sign': {
        const wire = kindOf(type).wire;
        expect(wire.by === 'sign' ? wire.signer(fieldsOf(type)) : undefined).toBeDefined();
        return;
      }
      case 'connection':
        expect(credential).toEqual({ kind: 'none' });
        expect(loadClientCertificate(material as never, 'example')).toMatchObject({ ok: true });
        return;
    }
  });

  it('is described in a listing', () => {
    const injector = kind.wire.injector(example.inject);
    expect(kindOf(type).describe?.(fieldsOf(type), injector) ?? injector.describe()).toBe(example.describes);
  });
});
