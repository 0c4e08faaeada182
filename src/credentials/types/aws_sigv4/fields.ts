import { z } from 'zod';
import { parseDuration } from '../../../config/duration.ts';
import { byteSizeText, httpsUrlOk } from '../values.ts';
import type { GrantTypeFields } from '../type-fields.ts';

// aws_sigv4 (signing/): the scope to sign for (else from the host name, else the
// client's own scope), the regions and services a request may be signed for, the largest body
// keyway holds to hash it, and the role it signs as.

/** A region or service name as AWS writes them (eu-west-1, s3, execute-api). */
const awsName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a name such as eu-west-1 or s3 (a-z, 0-9 and -)');

// A presigned URL keyway signs lives at most this long (1 second to SigV4's week).
const presignExpiry = z.string().refine(
  (text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms >= 1000 && ms <= 7 * 24 * 3_600_000 && ms % 1000 === 0;
  },
  { error: (issue) => `expected a duration from 1s to 7d such as 15m, got "${String(issue.input).slice(0, 40)}"` },
);

// STS takes DurationSeconds from 900 (15 minutes) to 43200 (12 hours; the role's own maximum may be lower).
const ROLE_MIN_MS = 15 * 60_000;
const ROLE_MAX_MS = 12 * 3_600_000;
const roleDuration = z.string().refine(
  (text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms >= ROLE_MIN_MS && ms <= ROLE_MAX_MS && ms % 1000 === 0;
  },
  { error: (issue) => `expected a duration from 15m to 12h such as 1h, got "${String(issue.input).slice(0, 40)}"` },
);

/** assume_role: keyway signs with the role's temporary credentials, which it gets from STS with the stored key. */
export const assumeRoleSchema = z.strictObject({
  role_arn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'expected a role ARN such as arn:aws:iam::123456789012:role/NAME'),
  duration: roleDuration.default('1h'),
  // Not a secret (AWS calls it an identifier), but it goes only to STS.
  external_id: z
    .string()
    .regex(/^[\w+=,.@:/-]{2,1224}$/, 'expected 2 to 1224 of a-z, A-Z, 0-9 and +=,.@:/-')
    .optional(),
  session_name: z
    .string()
    .regex(/^[\w+=,.@-]{2,64}$/, 'expected 2 to 64 of a-z, A-Z, 0-9 and +=,.@-')
    .optional(),
});

export const awsSigV4 = {
  type: 'aws_sigv4',
  shape: {
    region: awsName.optional(),
    service: awsName.optional(),
    regions: z.array(awsName).min(1, 'expected at least one region (leave regions out for any)').optional(),
    services: z.array(awsName).min(1, 'expected at least one service (leave services out for any)').optional(),
    max_signed_body: byteSizeText.optional(),
    // The longest a presigned URL keyway signs may live, whatever X-Amz-Expires the agent asked for:
    // an upstream that echoes the URL would otherwise hand the agent a credential for up to a week.
    max_presign_expiry: presignExpiry.optional(),
    // The role to sign as, and the STS endpoint that issues its credentials (default: AWS's global one).
    assume_role: assumeRoleSchema.optional(),
    sts_endpoint: z
      .string()
      .refine(httpsUrlOk, 'expected an https:// URL with no user, query or fragment, such as https://sts.eu-west-1.amazonaws.com')
      .optional(),
  },
  secretRequired: false,
  noInject: 'an aws_sigv4 grant signs each request; it has no inject settings',
  configCheck(grant, fail) {
    if (grant['sts_endpoint'] !== undefined && grant['assume_role'] === undefined) {
      fail('sts_endpoint', 'sts_endpoint is where assume_role gets its credentials: set assume_role too');
    }
  },
} satisfies GrantTypeFields<'aws_sigv4'>;
