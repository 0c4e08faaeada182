/**
 * The temporary credentials an aws_sigv4 grant's assume_role got from STS (record
 * `aws-role:<grant id>`), kept in the encrypted store beside OAuth token state so every keyway
 * process on the store (and every replica on PostgreSQL) signs with the same ones, and only one of
 * them calls STS per expiry. They are valid only for the role and the long-term key they were got
 * with: a record for another role ARN, external id or key id is not used.
 */
export interface AwsRoleState {
  roleArn: string;
  externalId?: string | undefined;
  /** The long-term key's id (not its secret) that assumed the role. */
  sourceKeyId: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch ms: STS's Expiration. */
  expiresAt: number;
  refreshedAt: string;
}

export const AWS_ROLE_STATE_PREFIX = 'aws-role:';
export const awsRoleStateId = (grantId: string): string => `${AWS_ROLE_STATE_PREFIX}${grantId}`;
