// Which region and service an AWS request is for, and what the client's own signature said. An
// agent signs with placeholder keys, so its Authorization header is a description of the request
// (the headers it signed, the scope it meant), never a credential keyway uses.

/** The parts of a client's `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` keyway reads. */
export interface ClientSignature {
  /** The lower-case header names the client signed. */
  signedHeaders: string[];
  region: string;
  service: string;
}

/** What the Authorization header says, or why keyway cannot re-sign the request it came with. */
export type ParsedAuthorization = { kind: 'none' } | { kind: 'sigv4'; signature: ClientSignature } | { kind: 'other'; scheme: string };

export function parseClientAuthorization(header: string | string[] | undefined): ParsedAuthorization {
  if (header === undefined) return { kind: 'none' };
  const text = Array.isArray(header) ? header.join(', ') : header;
  const space = text.indexOf(' ');
  const scheme = space === -1 ? text : text.slice(0, space);
  // SigV4a (AWS4-ECDSA-P256-SHA256) and anything else: not a shape keyway re-signs.
  if (scheme !== 'AWS4-HMAC-SHA256') return { kind: 'other', scheme: scheme.slice(0, 40) };
  const credential = /Credential=([^,\s]+)/.exec(text)?.[1];
  const signed = /SignedHeaders=([^,\s]+)/.exec(text)?.[1];
  const scope = credential?.split('/');
  if (!scope || scope.length < 5 || signed === undefined) return { kind: 'other', scheme: 'AWS4-HMAC-SHA256 (malformed)' };
  // Credential=AKID/20260101/us-east-1/s3/aws4_request: the key id is the first part, the rest is fixed.
  const [service, region] = [scope[scope.length - 2]!, scope[scope.length - 3]!];
  return { kind: 'sigv4', signature: { signedHeaders: signed.toLowerCase().split(';').filter(Boolean), region, service } };
}

const REGION = '[a-z]{2}(?:-[a-z]+)+-\\d{1,2}';
const AWS_SUFFIX = /\.amazonaws\.com(?:\.cn)?$/;

// AWS's own endpoint names, matched from the right of the name without its amazonaws.com suffix.
// Only these: many names under amazonaws.com belong to whoever rents them (a load balancer
// NAME-ID.REGION.elb, an instance's ec2-…compute, a database's …rds, an API Gateway's
// ID.execute-api.REGION, whose backend sees every header), and reading `s3-abc-123.eu-west-1.elb`
// as S3 in eu-west-1 would send them a signed request and its session token.
const HOST_FORMS: ReadonlyArray<{ form: RegExp; service: string | undefined; region?: string }> = [
  // S3, virtual-hosted (any bucket before it) or by path: s3.REGION, s3.dualstack.REGION, s3-REGION,
  // s3 (global), s3-accelerate, access points and S3 Control.
  { form: new RegExp(`^(?:.+\\.)?s3(?:\\.dualstack)?\\.(${REGION})$`), service: 's3' },
  { form: /^(?:.+\.)?s3-external-1$/, service: 's3', region: 'us-east-1' },
  { form: new RegExp(`^(?:.+\\.)?s3-(${REGION})$`), service: 's3' },
  { form: /^(?:.+\.)?s3(?:\.dualstack)?$/, service: 's3', region: 'us-east-1' },
  { form: /^(?:.+\.)?s3-accelerate(?:\.dualstack)?$/, service: 's3', region: 'us-east-1' },
  { form: new RegExp(`^.+\\.s3-accesspoint(?:\\.dualstack)?\\.(${REGION})$`), service: 's3' },
  { form: new RegExp(`^\\d{12}\\.s3-control(?:\\.dualstack)?\\.(${REGION})$`), service: 's3' },
  // A regional service endpoint: SERVICE.REGION, SERVICE-fips.REGION, SERVICE.dualstack.REGION.
  { form: new RegExp(`^([a-z][a-z0-9-]{0,62}?)(?:-fips)?(?:\\.dualstack)?\\.(${REGION})$`), service: undefined },
  // A global one (sts, iam, route53): us-east-1.
  { form: /^([a-z][a-z0-9-]{0,62}?)(?:-fips)?$/, service: undefined, region: 'us-east-1' },
];

/** Whether the host is under AWS's domains (amazonaws.com, amazonaws.com.cn), whoever owns the name. */
export function isAwsDomain(hostname: string): boolean {
  return AWS_SUFFIX.test(hostname.toLowerCase().replace(/\.$/, ''));
}

/**
 * The region and service an AWS endpoint's host name names: `s3.eu-west-1.amazonaws.com`,
 * `bucket.s3.amazonaws.com` (S3's global endpoint: us-east-1), `dynamodb.us-east-1.amazonaws.com`,
 * `sts.amazonaws.com` (a global endpoint: us-east-1). Undefined for a host that is not one of AWS's
 * own endpoint names (HOST_FORMS), even under amazonaws.com.
 */
export function scopeFromHost(hostname: string): { region: string; service: string } | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  const suffix = AWS_SUFFIX.exec(host);
  if (!suffix) return undefined;
  const rest = host.slice(0, suffix.index);
  for (const { form, service, region } of HOST_FORMS) {
    const match = form.exec(rest);
    if (!match) continue;
    if (service !== undefined) return { service, region: region ?? match[1]! };
    return { service: match[1]!, region: region ?? match[2]! };
  }
  return undefined;
}
