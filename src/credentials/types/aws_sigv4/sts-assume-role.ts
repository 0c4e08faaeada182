import { hash } from 'node:crypto';
import type { Dispatcher } from '../../../net/undici.ts';
import { scopeFromHost } from './signing/scope.ts';
import { signAwsRequest } from './signing/sign.ts';
import type { AssumeRole } from './signing/config.ts';
import type { Credential } from '../../material.ts';
import { MAX_ANSWER_BYTES, postToken, safeOrigin } from '../../issuing/token-post.ts';

// One STS AssumeRole call (the Query protocol: a form POST signed with Signature V4 for service
// `sts`), and its XML answer read by a small bounded parser: the answer has four text fields
// keyway needs and a fixed shape, which a few exact element matches read without an XML library.
// The call itself is issuing/token-post.ts's, as every issuer's.

type AwsKey = Extract<Credential, { kind: 'aws' }>;

export interface RoleCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** A failed AssumeRole. The message names the endpoint and STS's error code, never a key or STS's free text. */
export class StsError extends Error {
  override readonly name = 'StsError';
}

export interface AssumeRoleOptions {
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  /** The signing date (the token clock). */
  now: number;
}

export async function assumeRole(role: AssumeRole, key: AwsKey, options: AssumeRoleOptions): Promise<RoleCredentials> {
  const url = new URL(`${role.stsEndpoint}/`);
  const where = safeOrigin(url.href);
  const form = new URLSearchParams({
    Action: 'AssumeRole',
    Version: '2011-06-15',
    RoleArn: role.roleArn,
    RoleSessionName: role.sessionName,
    DurationSeconds: String(role.durationSeconds),
  });
  if (role.externalId !== undefined) form.set('ExternalId', role.externalId);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', host: url.host };
  // A regional endpoint (sts.eu-west-1.amazonaws.com) is signed for its region; the global one and
  // any other name for us-east-1, as the SDKs do.
  const region = scopeFromHost(url.hostname)?.region ?? 'us-east-1';
  // The form's hash is of the bytes postToken sends: a URLSearchParams is written one way only.
  const signed = await signAwsRequest(
    { method: 'POST', host: url.host, path: url.pathname, headers, signedHeaders: undefined, payloadHash: hash('sha256', form.toString(), 'hex') },
    key,
    { region, service: 'sts' },
    new Date(options.now),
  );
  headers['authorization'] = signed.authorization;
  headers['x-amz-date'] = signed['x-amz-date'];
  headers['x-amz-content-sha256'] = signed['x-amz-content-sha256'];
  if (signed['x-amz-security-token'] !== undefined) headers['x-amz-security-token'] = signed['x-amz-security-token'];

  const { status, text } = await postToken({ url, headers, body: { form } }, options, (failure) => {
    if (failure.kind === 'oversize') return new StsError(`STS answered with more than ${MAX_ANSWER_BYTES} bytes; not an AssumeRole answer`);
    const message =
      failure.kind === 'timeout'
        ? `STS ${where} did not answer AssumeRole within ${options.timeoutMs} ms`
        : `STS ${where} could not be reached (${failure.code})`;
    return new StsError(message);
  });
  if (status < 200 || status >= 300) {
    const code = elementText(text, 'Code');
    const named = code !== undefined && /^[\w.]{1,64}$/.test(code) ? `${code}, ` : '';
    throw new StsError(`STS ${where} refused AssumeRole for ${role.roleArn} (${named}HTTP ${status})`);
  }
  return parseCredentials(text, where);
}

/** The four fields of `<AssumeRoleResult><Credentials>`, each checked for its shape. */
export function parseCredentials(xml: string, where: string): RoleCredentials {
  const credentials = elementText(xml, 'Credentials', false);
  const bad = (what: string) => new StsError(`STS ${where} answered AssumeRole without ${what}`);
  if (credentials === undefined) throw bad('Credentials');
  const accessKeyId = elementText(credentials, 'AccessKeyId');
  const secretAccessKey = elementText(credentials, 'SecretAccessKey');
  const sessionToken = elementText(credentials, 'SessionToken');
  const expiration = elementText(credentials, 'Expiration');
  if (accessKeyId === undefined || !/^[A-Z0-9]{16,128}$/.test(accessKeyId)) throw bad('a valid AccessKeyId');
  if (secretAccessKey === undefined || !/^[\x21-\x7e]{16,256}$/.test(secretAccessKey)) throw bad('a valid SecretAccessKey');
  if (sessionToken === undefined || !/^[\x21-\x7e]{16,8192}$/.test(sessionToken)) throw bad('a valid SessionToken');
  const expiresAt = expiration === undefined ? Number.NaN : Date.parse(expiration);
  if (!Number.isFinite(expiresAt)) throw bad('a valid Expiration');
  return { accessKeyId, secretAccessKey, sessionToken, expiresAt };
}

/**
 * The text of the first `<name>` element (no attributes in AWS's answers), entities decoded; with
 * `decode` false, its raw inner XML. Undefined when absent.
 */
function elementText(xml: string, name: string, decode = true): string | undefined {
  const open = xml.indexOf(`<${name}>`);
  if (open === -1) return undefined;
  const start = open + name.length + 2;
  const end = xml.indexOf(`</${name}>`, start);
  if (end === -1) return undefined;
  const inner = xml.slice(start, end);
  return decode ? decodeEntities(inner.trim()) : inner;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    if (!entity.startsWith('#')) return NAMED[entity] ?? '';
    const point = entity.startsWith('#x') ? Number.parseInt(entity.slice(2), 16) : Number.parseInt(entity.slice(1), 10);
    return point <= 0x10ffff ? String.fromCodePoint(point) : '';
  });
}
