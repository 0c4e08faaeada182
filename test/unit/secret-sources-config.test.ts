// secret_sources: and a grant's secret {from, id, key}: each mistake named at its key, with the fix.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { missingSecretVariables, secretVariableNames } from '../../src/config/secret-variables.ts';
import { keychainAttributes } from '../../src/credentials/sources/keychain.ts';
import { parseReference } from '../../src/credentials/sources/onepassword.ts';

const grant = (secret: unknown) => ({ type: 'bearer', domains: ['api.example.test'], secret });
const messageFor = (raw: unknown): string => {
  try {
    parseConfig(raw, '/nonexistent-home');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};

describe('secret sources in the config', () => {
  it('take each type with its defaults, and a grant naming one of them', () => {
    const config = parseConfig(
      {
        secret_sources: { aws: { type: 'aws_secrets_manager', region: 'eu-west-1' }, kv: { type: 'vault_kv', address: 'https://vault.corp.example:8200' } },
        grants: { gh: grant({ from: 'aws', id: 'prod/github', key: 'token' }), kv: grant({ from: 'kv', id: 'apps/x', version: 3 }) },
      },
      '/nonexistent-home',
    );
    expect(config.secret_sources['aws']).toMatchObject({ ttl: 300_000, failure_ttl: 10_000, max_stale: 600_000, timeout: 10_000 });
    expect(config.secret_sources['kv']).toMatchObject({ mount: 'secret' });
    expect(config.grants['gh']!.secret).toEqual({ kind: 'source', from: 'aws', id: 'prod/github', key: 'token', version: undefined });
    expect(config.grants['kv']!.secret).toMatchObject({ version: '3' });
  });

  it('refuse a grant naming no source (did you mean), an unknown type, a missing id, and http off loopback', () => {
    const sources = { aws: { type: 'aws_secrets_manager' } };
    expect(messageFor({ secret_sources: sources, grants: { gh: grant({ from: 'awz', id: 'x' }) } })).toContain(
      'grants.gh.secret.from: no secret source "awz" in secret_sources; did you mean aws?',
    );
    expect(messageFor({ grants: { gh: grant({ from: 'aws', id: 'x' }) } })).toContain('no secret source "aws" in secret_sources: add it there');
    expect(messageFor({ secret_sources: { a: { type: 'aws_secret_manager' } } })).toContain(
      'secret_sources.a.type: expected one of aws_secrets_manager, aws_ssm, vault_kv, keychain, gcp_secret_manager, onepassword; did you mean aws_secrets_manager?',
    );
    expect(messageFor({ secret_sources: sources, grants: { gh: grant({ from: 'aws' }) } })).toContain('grants.gh.secret.id');
    expect(messageFor({ secret_sources: { v: { type: 'vault_kv', address: 'http://vault.corp.example:8200' } } })).toContain(
      'secret_sources.v.address: expected an https:// URL (http:// only on loopback)',
    );
    expect(parseConfig({ secret_sources: { v: { type: 'vault_kv', address: 'http://127.0.0.1:8200' } } }, '/nonexistent-home')).toBeDefined();
    expect(messageFor({ secret_sources: { aws: { type: 'aws_ssm', max_stale: '30d' } } })).toContain('secret_sources.aws.max_stale');
    // An OAuth grant's tokens come from its provider, not from a source.
    expect(
      messageFor({ secret_sources: sources, providers: {}, grants: { o: { type: 'oauth2', domains: ['a.example.test'], secret: { from: 'aws', id: 'x' } } } }),
    ).toContain('a secret source holds a static secret');
  });

  it("count a source's own credentials among keyway's secret variables (never handed to a command or an agent)", () => {
    const config = parseConfig(
      {
        secret_sources: {
          aws: { type: 'aws_ssm' },
          kv: { type: 'vault_kv', approle: { role_id: 'env:ROLE', secret_id: 'file:/run/secret-id' } },
          kv2: { type: 'vault_kv' },
        },
      },
      '/nonexistent-home',
    );
    expect(secretVariableNames(config)).toEqual(expect.arrayContaining(['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'ROLE', 'VAULT_TOKEN']));
  });

  it("ask a running keyway for the AWS key only as a whole set, never to complete this shell's own", () => {
    const config = parseConfig({ secret_sources: { aws: { type: 'aws_ssm' } } }, '/nonexistent-home');
    const aws = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
    expect(missingSecretVariables(config, {})).toEqual(expect.arrayContaining(aws));
    // A long-term key here and no session token: the running keyway's session token would mix two identities.
    expect(missingSecretVariables(config, { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 'x' }).filter((n) => aws.includes(n))).toEqual([]);
  });
});

describe('1Password item references', () => {
  it('read op://VAULT/ITEM/FIELD, op://VAULT/ITEM/SECTION/FIELD and VAULT/ITEM with key; refuse the rest', () => {
    expect(parseReference('op://Eng/Widget API/credential', undefined)).toEqual({ vault: 'Eng', item: 'Widget API', section: undefined, field: 'credential' });
    expect(parseReference('op://Eng/Widget/prod/token', undefined)).toEqual({ vault: 'Eng', item: 'Widget', section: 'prod', field: 'token' });
    expect(parseReference('Eng/Widget', 'token')).toMatchObject({ field: 'token' });
    expect(parseReference('Eng/Widget', undefined)).toMatchObject({ field: undefined });
    expect(() => parseReference('op://Eng/Widget/token', 'token')).toThrow(/named twice/);
    expect(() => parseReference('op://Eng', undefined)).toThrow(/expected an item named/);
    expect(() => parseReference('op://Eng//token', undefined)).toThrow(/expected an item named/);
  });
});

describe('keyring item names', () => {
  it('read SERVICE/ACCOUNT and NAME=VALUE pairs; refuse the rest', () => {
    expect(keychainAttributes('github/robot')).toEqual([
      ['service', 'github'],
      ['account', 'robot'],
    ]);
    expect(keychainAttributes('service=gh, user=ada application=cli')).toEqual([
      ['service', 'gh'],
      ['user', 'ada'],
      ['application', 'cli'],
    ]);
    expect(() => keychainAttributes('github')).toThrow(/SERVICE\/ACCOUNT/);
    expect(() => keychainAttributes('service=')).toThrow(/not NAME=VALUE/);
  });
});
