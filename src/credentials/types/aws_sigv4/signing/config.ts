import { DEFAULT_MAX_SIGNED_BODY } from '../../../signing/signer.ts';
import { parseByteSize } from '../../../../config/byte-size.ts';
import { parseDuration } from '../../../../config/duration.ts';

/** An aws_sigv4 grant's signing settings, as the request path reads them. */
export interface AwsSigning {
  /** The scope to sign for; unset: from the host name, else from the client's own signature. */
  readonly region: string | undefined;
  readonly service: string | undefined;
  /** Allowlists: a request signed for another region or service is refused (policy_denied). */
  readonly regions: ReadonlySet<string> | undefined;
  readonly services: ReadonlySet<string> | undefined;
  /** The largest body keyway holds in memory to hash it for the signature (and the largest aws-chunked chunk). */
  readonly maxSignedBody: number;
  /** The longest a presigned URL keyway signs lives, in seconds (max_presign_expiry; 15 minutes). */
  readonly maxPresignSeconds: number;
  /** Sign as this role, with temporary credentials from STS (../role.ts); unset: with the stored key. */
  readonly assumeRole: AssumeRole | undefined;
}

export interface AssumeRole {
  readonly roleArn: string;
  readonly durationSeconds: number;
  readonly externalId: string | undefined;
  readonly sessionName: string;
  /** Where AssumeRole goes: the grant's sts_endpoint, else AWS's global endpoint. */
  readonly stsEndpoint: string;
}

/** assume_role as the config and the store write it (config/grant-fields.ts checks it). */
export interface AssumeRoleFields {
  role_arn: string;
  duration?: string | undefined;
  external_id?: string | undefined;
  session_name?: string | undefined;
}

export const DEFAULT_STS_ENDPOINT = 'https://sts.amazonaws.com';
const DEFAULT_ROLE_SECONDS = 3600;

/** 15 minutes: the URL keyway signs goes upstream at once; it needs no longer than SigV4's clock skew. */
const DEFAULT_PRESIGN_MS = 15 * 60_000;

export interface AwsSigningFields {
  region?: string | undefined;
  service?: string | undefined;
  regions?: readonly string[] | undefined;
  services?: readonly string[] | undefined;
  max_signed_body?: string | undefined;
  max_presign_expiry?: string | undefined;
  assume_role?: AssumeRoleFields | undefined;
  sts_endpoint?: string | undefined;
}

export function awsSigningOf(fields: AwsSigningFields): AwsSigning {
  return {
    region: fields.region,
    service: fields.service,
    regions: fields.regions ? new Set(fields.regions) : undefined,
    services: fields.services ? new Set(fields.services) : undefined,
    maxSignedBody: (fields.max_signed_body !== undefined ? parseByteSize(fields.max_signed_body) : undefined) ?? DEFAULT_MAX_SIGNED_BODY,
    maxPresignSeconds: Math.round(
      ((fields.max_presign_expiry === undefined ? undefined : parseDuration(fields.max_presign_expiry)) ?? DEFAULT_PRESIGN_MS) / 1000,
    ),
    assumeRole: fields.assume_role === undefined ? undefined : assumeRoleOf(fields.assume_role, fields.sts_endpoint),
  };
}

function assumeRoleOf(role: AssumeRoleFields, stsEndpoint: string | undefined): AssumeRole {
  const ms = role.duration === undefined ? undefined : parseDuration(role.duration);
  return {
    roleArn: role.role_arn,
    durationSeconds: ms === undefined ? DEFAULT_ROLE_SECONDS : Math.round(ms / 1000),
    externalId: role.external_id,
    // CloudTrail shows the session name: say who assumed the role.
    sessionName: role.session_name ?? 'keyway',
    stsEndpoint: (stsEndpoint ?? DEFAULT_STS_ENDPOINT).replace(/\/+$/, ''),
  };
}
