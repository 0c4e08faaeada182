import { ProxyError } from '../../../../errors/index.ts';
import type { SigningHead } from '../../../signing/signer.ts';
import type { AwsSigning } from './config.ts';
import { type PayloadMode, payloadMode } from './payload.ts';
import { isAwsDomain, parseClientAuthorization, scopeFromHost } from './scope.ts';
import type { SigningScope } from './sign.ts';

/** How an aws_sigv4 grant's request will be signed, decided before anything is read of its body. */
export interface AwsPlan {
  scope: SigningScope;
  payload: PayloadMode;
  /** A presigned URL: signed again in the query, not in a header. */
  presigned: boolean;
  /** The headers the client signed (signed again), or undefined when it signed none. */
  signedHeaders: readonly string[] | undefined;
}

/**
 * The region and service to sign for (the grant's, else the host name's, else the client's own
 * scope), checked against the grant's allowlists, and how the body enters the signature. A shape
 * keyway cannot re-sign is refused here (signature_unsupported), before the credential is fetched
 * or the body read: never sent with a signature that is wrong.
 */
export function planAws(signing: AwsSigning, head: SigningHead): AwsPlan {
  const grantId = head.grantId;
  const unsupported = (what: string, hint: string) =>
    new ProxyError('signature_unsupported', `grant "${grantId}" cannot re-sign ${what}`, { grant: grantId, hint });
  const presigned = /(?:^|[?&])X-Amz-(?:Signature|Credential)=/i.test(head.query);
  const auth = presigned ? ({ kind: 'none' } as const) : parseClientAuthorization(head.headers.authorization);
  if (auth.kind === 'other') throw unsupported(`a request signed with ${auth.scheme}`, "sign with AWS4-HMAC-SHA256 (SigV4), the SDKs' default");
  const client = auth.kind === 'sigv4' ? auth.signature : presigned ? presignedScope(head.query) : undefined;
  const host = head.targetHost;
  const named = scopeFromHost(host);
  // Under amazonaws.com, a name that is not one of AWS's own endpoints belongs to whoever rents it
  // (a load balancer, an instance, an API Gateway): signed only when the grant names the scope.
  if (named === undefined && isAwsDomain(host) && (signing.region === undefined || signing.service === undefined)) {
    throw unsupported(
      `a request to ${host}: not one of AWS's own endpoint names (names under amazonaws.com such as load balancers, instances and API Gateways belong to whoever rents them)`,
      `to sign for it anyway, give grant "${grantId}" region and service, and domains that name this host`,
    );
  }
  const region = signing.region ?? named?.region ?? client?.region;
  const service = signing.service ?? named?.service ?? client?.service;
  if (region === undefined || service === undefined) {
    throw unsupported(
      `a request to ${host}: its region and service are not in the host name or a client signature`,
      `set region and service on grant "${grantId}"`,
    );
  }
  if (signing.regions !== undefined && !signing.regions.has(region)) {
    throw denied(grantId, `region ${region}`, `regions: ${[...signing.regions].join(', ')}`);
  }
  if (signing.services !== undefined && !signing.services.has(service)) {
    throw denied(grantId, `service ${service}`, `services: ${[...signing.services].join(', ')}`);
  }
  const plan: AwsPlan = {
    scope: { region, service },
    // A presigned request's body is never signed (S3 signs it as UNSIGNED-PAYLOAD).
    payload: presigned ? { kind: 'keep', value: 'UNSIGNED-PAYLOAD' } : payloadMode(head.headers['x-amz-content-sha256'], grantId),
    presigned,
    signedHeaders: client?.signedHeaders,
  };
  const { audit } = head;
  audit.signed = 'sigv4';
  audit.region = region;
  audit.service = service;
  if (signing.assumeRole !== undefined) audit.role = signing.assumeRole.roleArn;
  return plan;
}

/** The scope a presigned URL's X-Amz-Credential names (its region and service), if it names one. */
function presignedScope(query: string): { region: string; service: string; signedHeaders: string[] } | undefined {
  const credential = /(?:^|[?&])X-Amz-Credential=([^&]*)/i.exec(query)?.[1];
  if (credential === undefined) return undefined;
  let parts: string[];
  try {
    parts = decodeURIComponent(credential).split('/');
  } catch {
    return undefined;
  }
  if (parts.length < 5) return undefined;
  return { region: parts[parts.length - 3]!, service: parts[parts.length - 2]!, signedHeaders: [] };
}

function denied(grantId: string, what: string, allowed: string): ProxyError {
  return new ProxyError('policy_denied', `grant "${grantId}" does not sign for ${what} (${allowed})`, {
    grant: grantId,
    hint: `the grant's ${allowed.split(':')[0]} in the keyway config decide this; ask whoever runs keyway`,
  });
}
