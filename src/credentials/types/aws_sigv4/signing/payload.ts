import { ProxyError } from '../../../../errors/index.ts';

// How the request's body enters its signature, from the x-amz-content-sha256 the client sent:
//   absent, or a hex SHA-256   keyway hashes the body itself (it signs what it sends, not what the
//                              agent says it sends), holding it whole up to max_signed_body
//   UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER   kept as sent: the body is not signed
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER)           an aws-chunked stream signed chunk by
//                                                          chunk: each chunk signed again as it passes
//                                                          (chunked.ts)
//   anything else (SigV4a streams, ...)                    refused: signature_unsupported, never a
//                                                          request sent with a signature that is wrong

export type PayloadMode = { kind: 'hash'; header: boolean } | { kind: 'keep'; value: string } | { kind: 'chunked'; value: string; trailer: boolean };

const KEPT = new Set(['UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);
const SIGNED_STREAM = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
const SIGNED_STREAM_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

export function payloadMode(header: string | string[] | undefined, grantId: string): PayloadMode {
  if (header === undefined) return { kind: 'hash', header: false };
  const value = Array.isArray(header) ? header.join(',') : header;
  if (HEX_SHA256.test(value)) return { kind: 'hash', header: true };
  if (KEPT.has(value)) return { kind: 'keep', value };
  if (value === SIGNED_STREAM || value === SIGNED_STREAM_TRAILER) return { kind: 'chunked', value, trailer: value === SIGNED_STREAM_TRAILER };
  throw new ProxyError('signature_unsupported', `grant "${grantId}" cannot re-sign a body sent as x-amz-content-sha256: ${value.slice(0, 64)}`, {
    grant: grantId,
    hint: 'send the body as UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or with its SHA-256 (the SDKs do by default over HTTPS)',
  });
}
