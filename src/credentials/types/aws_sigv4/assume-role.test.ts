import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../config/load.ts';
import { awsSigningOf } from './signing/config.ts';
import type { Config } from '../../../config/index.ts';

/** The config's grant "aws", narrowed to its type (the grant union narrows on type). */
function awsGrant(config: Config) {
  const grant = config.grants['aws']!;
  if (grant.type !== 'aws_sigv4') throw new Error(`grant aws is ${grant.type}`);
  return grant;
}
import { parseCredentials, StsError } from './sts-assume-role.ts';

// assume_role's config keys and the reading of STS's AssumeRole answer.

const ROLE = 'arn:aws:iam::123456789012:role/keyway-agent';

const grantWith = (extra: Record<string, unknown>, type = 'aws_sigv4') => ({
  grants: { aws: { type, domains: ['s3.us-east-1.amazonaws.com'], secret: 'env:AWS', ...extra } },
});

const messageFor = (raw: unknown): string => {
  try {
    parseConfig(raw, '/nonexistent-home');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};

describe('assume_role and sts_endpoint in the config', () => {
  it('are read with their defaults: 1h, session name keyway, the global STS endpoint', () => {
    const config = parseConfig(grantWith({ assume_role: { role_arn: ROLE } }), '/nonexistent-home');
    expect(awsSigningOf(awsGrant(config)).assumeRole).toEqual({
      roleArn: ROLE,
      durationSeconds: 3600,
      externalId: undefined,
      sessionName: 'keyway',
      stsEndpoint: 'https://sts.amazonaws.com',
    });
    const full = parseConfig(
      grantWith({
        assume_role: { role_arn: ROLE, duration: '15m', external_id: 'ext-1', session_name: 'agent-1' },
        sts_endpoint: 'https://sts.eu-west-1.amazonaws.com/',
      }),
      '/nonexistent-home',
    );
    expect(awsSigningOf(awsGrant(full)).assumeRole).toMatchObject({
      durationSeconds: 900,
      externalId: 'ext-1',
      sessionName: 'agent-1',
      stsEndpoint: 'https://sts.eu-west-1.amazonaws.com',
    });
  });

  it('refuse what STS would refuse, naming the key', () => {
    expect(messageFor(grantWith({ assume_role: { role_arn: 'keyway-agent' } }))).toContain(
      'grants.aws.assume_role.role_arn: expected a role ARN such as arn:aws:iam::123456789012:role/NAME',
    );
    expect(messageFor(grantWith({ assume_role: { role_arn: ROLE, duration: '5m' } }))).toContain(
      'grants.aws.assume_role.duration: expected a duration from 15m to 12h such as 1h, got "5m"',
    );
    expect(messageFor(grantWith({ assume_role: { role_arn: ROLE, duration: '13h' } }))).toContain('from 15m to 12h');
    expect(messageFor(grantWith({ assume_role: { role_arn: ROLE, session_name: 'has space' } }))).toContain('grants.aws.assume_role.session_name');
    expect(messageFor(grantWith({ assume_role: { role_arn: ROLE }, sts_endpoint: 'http://sts.amazonaws.com' }))).toContain(
      'grants.aws.sts_endpoint: expected an https:// URL',
    );
    expect(messageFor(grantWith({ sts_endpoint: 'https://sts.amazonaws.com' }))).toContain(
      'grants.aws.sts_endpoint: sts_endpoint is where assume_role gets its credentials',
    );
    expect(messageFor(grantWith({ assume_role: { role_arn: ROLE } }, 'bearer'))).toContain('grants.aws.assume_role: assume_role belongs to an aws_sigv4 grant');
  });
});

const answer = (credentials: string) =>
  `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>${credentials}</Credentials></AssumeRoleResult></AssumeRoleResponse>`;
const GOOD = {
  AccessKeyId: 'ASIAKEYWAY0000000001',
  SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  SessionToken: 'FwoGZXIvYXdzEBYaDkeyway+token/with&amp;entity==',
  Expiration: '2026-11-23T20:00:00Z',
};
const fields = (values: Record<string, string>) =>
  Object.entries(values)
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join('');

describe("STS's AssumeRole answer", () => {
  it('gives the four fields, entities decoded', () => {
    expect(parseCredentials(answer(fields(GOOD)), 'https://sts.example.test')).toEqual({
      accessKeyId: GOOD.AccessKeyId,
      secretAccessKey: GOOD.SecretAccessKey,
      sessionToken: 'FwoGZXIvYXdzEBYaDkeyway+token/with&entity==',
      expiresAt: Date.parse(GOOD.Expiration),
    });
  });

  it('refuses an answer missing or mangling any of them, saying which, never quoting it', () => {
    const refusal = (xml: string) => {
      try {
        parseCredentials(xml, 'https://sts.example.test');
      } catch (err) {
        expect(err).toBeInstanceOf(StsError);
        return (err as Error).message;
      }
      throw new Error('expected a refusal');
    };
    expect(refusal('<html>busy</html>')).toBe('STS https://sts.example.test answered AssumeRole without Credentials');
    expect(refusal(answer(fields({ ...GOOD, AccessKeyId: 'short' })))).toContain('without a valid AccessKeyId');
    expect(refusal(answer(fields({ ...GOOD, SecretAccessKey: '' })))).toContain('without a valid SecretAccessKey');
    const { SessionToken: _, ...noToken } = GOOD;
    expect(refusal(answer(fields(noToken)))).toContain('without a valid SessionToken');
    expect(refusal(answer(fields({ ...GOOD, Expiration: 'tomorrow' })))).toContain('without a valid Expiration');
    expect(refusal(answer(fields({ ...GOOD, Expiration: 'tomorrow' })))).not.toContain(GOOD.SecretAccessKey);
  });
});

describe('max_presign_expiry', () => {
  it('caps presigned URLs at 15 minutes unless the grant says otherwise, from 1s to 7d', () => {
    const aws = (extra: Record<string, unknown>) => awsSigningOf(awsGrant(parseConfig(grantWith(extra), '/nonexistent-home')));
    expect(aws({}).maxPresignSeconds).toBe(900);
    expect(aws({ max_presign_expiry: '60s' }).maxPresignSeconds).toBe(60);
    expect(aws({ max_presign_expiry: '7d' }).maxPresignSeconds).toBe(604_800);
    expect(messageFor(grantWith({ max_presign_expiry: '8d' }))).toMatch(/max_presign_expiry.*from 1s to 7d/s);
    expect(messageFor(grantWith({ max_presign_expiry: '1h' }, 'bearer'))).toContain('max_presign_expiry belongs to an aws_sigv4 grant');
  });
});
