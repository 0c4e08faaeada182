// Unsigned-looking JWTs for the stand-ins' logins: the agents read the claims of their ID and access
// tokens (an `exp` to schedule a refresh, ChatGPT's plan and account id) and never check a signature,
// which only the vendor could. The signature here is random bytes: it proves nothing, on purpose.
import { randomBytes } from 'node:crypto';

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function fakeJwt(claims: Record<string, unknown>): string {
  return `${part({ alg: 'RS256', typ: 'JWT', kid: 'standin' })}.${part(claims)}.${randomBytes(32).toString('base64url')}`;
}

export function jwtClaims(token: string): Record<string, unknown> {
  const body = token.split('.')[1];
  if (body === undefined) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
}
