import { createHash } from 'node:crypto';
import { type HmacScheme, customScheme } from './scheme.ts';
import type { HmacPresetName } from '../fields/sign-schema.ts';
import { parseTemplate, type TemplatePart } from '../fields/template.ts';

// Published schemes of real APIs. Each is tested against the worked example in the API's own
// documentation where it publishes one (../presets.test.ts).

function parts(template: string): TemplatePart[] {
  const parsed = parseTemplate(template);
  if (typeof parsed === 'string') throw new Error(`preset template: ${parsed}`);
  return parsed;
}

/**
 * Binance: hex HMAC-SHA256 over the query string followed directly by the form body (no `&`
 * between them), `timestamp` (ms) and `signature` in the query, the key id in X-MBX-APIKEY. Clients
 * such as python-binance put timestamp and signature in a POST body instead; keyway takes them out
 * of the body and puts fresh ones in the query, which Binance accepts and which keeps a single copy.
 */
const binance: HmacScheme = {
  ...customScheme(
    {
      algorithm: 'sha256',
      keyEncoding: 'utf8',
      parts: parts('{query}{body}'),
      timestamp: { place: { in: 'query', name: 'timestamp' }, format: 'unix_ms' },
      nonce: undefined,
      output: { place: { in: 'query', name: 'signature' }, encoding: 'hex' },
      keyId: { in: 'header', name: 'x-mbx-apikey' },
      passphrase: undefined,
    },
    'binance',
  ),
  stripFormFields: ['timestamp', 'signature'],
};

/**
 * Kraken spot REST: API-Sign is base64 HMAC-SHA512, keyed with the base64-decoded secret, over the
 * URI path followed by the raw SHA-256 digest of nonce + POST body. The nonce is a field of the
 * form body, so keyway rewrites the body: it sets `nonce` to its own increasing counter (the
 * client's nonce, made with no knowledge of other agents on the same key, could go backwards).
 */
const kraken: HmacScheme = {
  ...customScheme(
    {
      algorithm: 'sha512',
      keyEncoding: 'base64',
      parts: [],
      timestamp: undefined,
      nonce: { place: { in: 'form', name: 'nonce' }, format: 'counter_ms' },
      output: { place: { in: 'header', name: 'api-sign' }, encoding: 'base64' },
      keyId: { in: 'header', name: 'api-key' },
      passphrase: undefined,
    },
    'kraken',
  ),
  needsBody: true,
  message: (input) =>
    Buffer.concat([
      Buffer.from(input.path, 'utf8'),
      createHash('sha256')
        .update(input.nonce ?? '')
        .update(input.body)
        .digest(),
    ]),
};

/**
 * Coinbase Exchange: CB-ACCESS-SIGN is base64 HMAC-SHA256, keyed with the base64-decoded secret,
 * over timestamp (seconds) + method + request path + body. The request path includes the query
 * string, as Coinbase's own clients sign it.
 */
const coinbaseExchange = customScheme(
  {
    algorithm: 'sha256',
    keyEncoding: 'base64',
    parts: parts('{timestamp}{method}{path_query}{body}'),
    timestamp: { place: { in: 'header', name: 'cb-access-timestamp' }, format: 'unix_seconds' },
    nonce: undefined,
    output: { place: { in: 'header', name: 'cb-access-sign' }, encoding: 'base64' },
    keyId: { in: 'header', name: 'cb-access-key' },
    passphrase: { in: 'header', name: 'cb-access-passphrase' },
  },
  'coinbase_exchange',
);

/**
 * OKX v5: OK-ACCESS-SIGN is base64 HMAC-SHA256, keyed with the secret as text, over ISO 8601
 * timestamp (milliseconds, Z) + method + request path with query + body.
 */
const okx = customScheme(
  {
    algorithm: 'sha256',
    keyEncoding: 'utf8',
    parts: parts('{timestamp}{method}{path_query}{body}'),
    timestamp: { place: { in: 'header', name: 'ok-access-timestamp' }, format: 'iso8601' },
    nonce: undefined,
    output: { place: { in: 'header', name: 'ok-access-sign' }, encoding: 'base64' },
    keyId: { in: 'header', name: 'ok-access-key' },
    passphrase: { in: 'header', name: 'ok-access-passphrase' },
  },
  'okx',
);

const PRESETS: Record<HmacPresetName, HmacScheme> = { binance, kraken, coinbase_exchange: coinbaseExchange, okx };

export function presetScheme(name: HmacPresetName): HmacScheme {
  const scheme = PRESETS[name];
  return { ...scheme, describe: () => `hmac preset ${name}` };
}
