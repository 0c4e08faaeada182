import { createHash } from 'node:crypto';
import type { KeyEncoding } from './material.ts';
import type { CustomSignConfig, NonceFormat, Placement, TimestampFormat } from '../fields/sign-schema.ts';
import { type HashAlgorithm, type TemplatePart, templateNeedsBody } from '../fields/template.ts';

// A signing scheme compiled from config: where each value goes, and how the bytes to sign are
// built from the request. Presets are schemes too, most of them plain data (presets.ts).

/** The request as it will go upstream (keyway's timestamp, nonce and key id already in place). */
export interface MessageInput {
  /** Upper case. */
  method: string;
  /** The path without the query. */
  path: string;
  /** The raw query without `?`, as sent, without the signature when the signature goes in the query. */
  query: string;
  /** The body as sent (empty when there is none). */
  body: Buffer;
  host: string;
  /** Lowercase names; repeated headers joined with ", ". */
  headers: Readonly<Record<string, string>>;
  timestamp: string | undefined;
  nonce: string | undefined;
  keyId: string | undefined;
}

export interface HmacScheme {
  /** `custom` or the preset's name: for listings and audit. */
  readonly name: string;
  readonly algorithm: HashAlgorithm;
  readonly keyEncoding: KeyEncoding;
  /** True when signing reads or rewrites the body: the proxy must hold the whole body first. */
  readonly needsBody: boolean;
  readonly timestamp: { place: Placement | undefined; format: TimestampFormat } | undefined;
  readonly nonce: { place: Placement | undefined; format: NonceFormat } | undefined;
  readonly output: { place: Placement; encoding: 'hex' | 'base64' };
  readonly keyId: Placement | undefined;
  readonly passphrase: Placement | undefined;
  /** Fields taken out of a form body when present (a client's own copies of values keyway puts elsewhere). */
  readonly stripFormFields?: readonly string[] | undefined;
  /** The bytes the HMAC is taken over. */
  message(input: MessageInput): Buffer;
  /** One line for listings: never the key. */
  describe(): string;
}

export function renderTemplate(parts: readonly TemplatePart[], input: MessageInput): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    if (part.kind === 'text') chunks.push(Buffer.from(part.text, 'utf8'));
    else if (part.kind === 'header') chunks.push(Buffer.from(input.headers[part.name] ?? '', 'utf8'));
    else if (part.kind === 'body_hash') chunks.push(Buffer.from(createHash(part.algorithm).update(input.body).digest(part.encoding), 'utf8'));
    else if (part.name === 'body') chunks.push(input.body);
    else chunks.push(Buffer.from(simpleValue(part.name, input), 'utf8'));
  }
  return Buffer.concat(chunks);
}

function simpleValue(name: Exclude<Extract<TemplatePart, { kind: 'value' }>['name'], 'body'>, input: MessageInput): string {
  switch (name) {
    case 'method':
      return input.method;
    case 'path':
      return input.path;
    case 'query':
      return input.query;
    case 'path_query':
      return input.query === '' ? input.path : `${input.path}?${input.query}`;
    case 'host':
      return input.host;
    case 'timestamp':
      return input.timestamp ?? '';
    case 'nonce':
      return input.nonce ?? '';
    case 'key_id':
      return input.keyId ?? '';
  }
}

export function placementText(place: Placement): string {
  return `${place.in} ${place.name}`;
}

/** A custom scheme from a validated `sign:` block. */
export function customScheme(config: Omit<CustomSignConfig, 'kind' | 'string'>, name = 'custom'): HmacScheme {
  const { parts } = config;
  return {
    name,
    algorithm: config.algorithm,
    keyEncoding: config.keyEncoding,
    needsBody: templateNeedsBody(parts) || config.nonce?.place?.in === 'form',
    timestamp: config.timestamp,
    nonce: config.nonce,
    output: config.output,
    keyId: config.keyId,
    passphrase: config.passphrase,
    message: (input) => renderTemplate(parts, input),
    describe: () => `hmac-${config.algorithm} ${config.output.encoding} in ${placementText(config.output.place)}`,
  };
}
