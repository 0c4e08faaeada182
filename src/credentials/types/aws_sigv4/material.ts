// The aws_sigv4 type's secret, as `keyway secrets set` takes it and the store keeps it.

/** An AWS access key (aws_sigv4): keyway signs with it, never sends it. */
export interface AwsMaterial {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}
