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

const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const AWS_SUFFIX = /\.amazonaws\.com(?:\.cn)?$/;

/**
 * The region and service an AWS endpoint's host name names: `s3.eu-west-1.amazonaws.com`,
 * `bucket.s3.amazonaws.com` (S3's global endpoint: us-east-1), `dynamodb.us-east-1.amazonaws.com`,
 * `sts.amazonaws.com` (a global endpoint: us-east-1). Undefined for a host that is not one.
 */
export function scopeFromHost(hostname: string): { region: string; service: string } | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  const suffix = AWS_SUFFIX.exec(host);
  if (!suffix) return undefined;
  const labels = host.slice(0, suffix.index).split('.').filter(Boolean);
  if (labels.length === 0) return undefined;
  // S3: virtual-hosted buckets come first, and the legacy s3-REGION form has the region in its label.
  const s3 = labels.findIndex((l) => l === 's3' || l.startsWith('s3-'));
  if (s3 !== -1) {
    const label = labels[s3]!;
    if (label.startsWith('s3-') && REGION.test(label.slice(3))) return { region: label.slice(3), service: 's3' };
    const next = labels.slice(s3 + 1).find((l) => l !== 'dualstack' && l !== 'accelerate');
    return { region: next !== undefined && REGION.test(next) ? next : 'us-east-1', service: 's3' };
  }
  const region = labels.find((l) => REGION.test(l));
  return { region: region ?? 'us-east-1', service: labels[0]! };
}
