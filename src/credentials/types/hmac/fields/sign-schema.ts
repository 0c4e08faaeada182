import { z } from 'zod';
import { HASH_ALGORITHMS, isHeaderName, parseTemplate, type TemplatePart, templateUses } from './template.ts';

// The `sign:` block of an hmac grant, validated when the config loads. It imports nothing from
// credentials on purpose: config/ (a lower layer) can take this file as it is.
//
//   sign: {preset: kraken}
//   sign:
//     algorithm: sha256            # sha1 | sha256 | sha384 | sha512
//     key_encoding: base64         # utf8 (default) | base64 | hex: how to read the material's key
//     string: "{timestamp}{method}{path_query}{body}"
//     timestamp: {header: X-Timestamp, format: unix_ms}    # or query: NAME; format unix_seconds | unix_ms | iso8601
//     nonce: {query: nonce, format: random_hex}            # counter_ms | counter_us | random_hex | uuid; header, query or form
//     output: {header: X-Signature, encoding: hex}         # or query: NAME; hex | base64
//     key_id: {header: X-Api-Key}                          # where the material's keyId goes
//     passphrase: {header: X-Passphrase}                   # where the material's passphrase goes

export const HMAC_PRESETS = ['binance', 'kraken', 'coinbase_exchange', 'okx'] as const;
export type HmacPresetName = (typeof HMAC_PRESETS)[number];

export const TIMESTAMP_FORMATS = ['unix_seconds', 'unix_ms', 'iso8601'] as const;
export type TimestampFormat = (typeof TIMESTAMP_FORMATS)[number];
export const NONCE_FORMATS = ['counter_ms', 'counter_us', 'random_hex', 'uuid'] as const;
export type NonceFormat = (typeof NONCE_FORMATS)[number];

/** Where a value goes on the request. `form` is a field of an application/x-www-form-urlencoded body. */
export type Placement = { in: 'header'; name: string } | { in: 'query'; name: string } | { in: 'form'; name: string };

export interface CustomSignConfig {
  kind: 'custom';
  algorithm: (typeof HASH_ALGORITHMS)[number];
  keyEncoding: 'utf8' | 'base64' | 'hex';
  string: string;
  parts: TemplatePart[];
  timestamp?: { place: Placement | undefined; format: TimestampFormat } | undefined;
  nonce?: { place: Placement | undefined; format: NonceFormat } | undefined;
  output: { place: Placement; encoding: 'hex' | 'base64' };
  keyId?: Placement | undefined;
  passphrase?: Placement | undefined;
}
export interface PresetSignConfig {
  kind: 'preset';
  preset: HmacPresetName;
}
export type HmacSignConfig = CustomSignConfig | PresetSignConfig;

const oneOf = (values: readonly string[]) => `expected one of ${values.join(', ')}`;

/** zod's own wording names types; these say what to write. `input === undefined` is a missing key. */
const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (issue) => (issue.input === undefined ? 'is required' : oneOf(values)) });

const strict = <S extends z.ZodRawShape>(shape: S) =>
  z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown key ${issue.keys.join(', ')} (known here: ${Object.keys(shape).join(', ')})`;
      if (issue.code === 'invalid_type')
        return issue.input === undefined ? 'is required' : `expected a map of keys (known here: ${Object.keys(shape).join(', ')})`;
      return undefined;
    },
  });

const headerName = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'expected a header name') })
  .refine(isHeaderName, { message: 'expected a header name (letters, digits and -)' });
const paramName = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'expected a parameter name') })
  .min(1, { message: 'expected a non-empty parameter name' });

const placeShape = { header: headerName.optional(), query: paramName.optional() };
const placeWithFormShape = { ...placeShape, form: paramName.optional() };

type RawPlace = { header?: string | undefined; query?: string | undefined; form?: string | undefined };

/** The one placement given, or a message when there are several (or none, where one is required). */
function placementOf(raw: RawPlace, required: boolean): Placement | undefined | string {
  const given = (['header', 'query', 'form'] as const).filter((where) => raw[where] !== undefined);
  if (given.length > 1) return `give one of ${given.join(' or ')}, not both`;
  const where = given[0];
  if (where === undefined) return required ? 'say where it goes: header: NAME or query: NAME' : undefined;
  return { in: where, name: where === 'header' ? (raw[where] as string).toLowerCase() : (raw[where] as string) };
}

const customBlock = strict({
  algorithm: choice(HASH_ALGORITHMS),
  key_encoding: choice(['utf8', 'base64', 'hex']).optional(),
  string: z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'expected the string to sign, as a template') }),
  timestamp: strict({ ...placeShape, format: choice(TIMESTAMP_FORMATS) }).optional(),
  nonce: strict({ ...placeWithFormShape, format: choice(NONCE_FORMATS) }).optional(),
  output: strict({ ...placeShape, encoding: choice(['hex', 'base64']) }),
  key_id: strict(placeShape).optional(),
  passphrase: strict(placeShape).optional(),
});

const presetBlock = strict({ preset: choice(HMAC_PRESETS) });

type Issue = { path: PropertyKey[]; message: string };

function checkCustom(raw: z.output<typeof customBlock>): CustomSignConfig | Issue[] {
  const issues: Issue[] = [];
  const place = (key: string, value: RawPlace | undefined, required: boolean): Placement | undefined => {
    if (value === undefined) return undefined;
    const result = placementOf(value, required);
    if (typeof result === 'string') issues.push({ path: [key], message: result });
    return typeof result === 'string' ? undefined : result;
  };
  const parts = parseTemplate(raw.string);
  if (typeof parts === 'string') return [{ path: ['string'], message: parts }];
  const timestamp = raw.timestamp && { place: place('timestamp', raw.timestamp, false), format: raw.timestamp.format };
  const nonce = raw.nonce && { place: place('nonce', raw.nonce, false), format: raw.nonce.format };
  const output = place('output', raw.output, true);
  const keyId = place('key_id', raw.key_id, true);
  const passphrase = place('passphrase', raw.passphrase, true);
  if (templateUses(parts, 'timestamp') && !timestamp) issues.push({ path: ['string'], message: 'uses {timestamp}, so sign.timestamp must say its format' });
  if (templateUses(parts, 'nonce') && !nonce) issues.push({ path: ['string'], message: 'uses {nonce}, so sign.nonce must say its format' });
  const seen = new Map<string, string>();
  for (const [key, where] of [
    ['timestamp', timestamp?.place],
    ['nonce', nonce?.place],
    ['output', output],
    ['key_id', keyId],
    ['passphrase', passphrase],
  ] as const) {
    if (!where) continue;
    const slot = `${where.in} ${where.name}`;
    const other = seen.get(slot);
    if (other) issues.push({ path: [key], message: `${where.in} ${where.name} is already where ${other} goes` });
    seen.set(slot, key);
  }
  if (issues.length > 0 || !output) return issues;
  return {
    kind: 'custom',
    algorithm: raw.algorithm,
    keyEncoding: raw.key_encoding ?? 'utf8',
    string: raw.string,
    parts,
    timestamp,
    nonce,
    output: { place: output, encoding: raw.output.encoding },
    keyId,
    passphrase,
  };
}

/**
 * The `sign:` block. A map with `preset` is a preset (and nothing else); any other map is a custom
 * scheme. Each issue carries its key path inside the block and a message that says what to write.
 */
export const hmacSignSchema = z.unknown().transform((value, ctx): HmacSignConfig => {
  const report = (issues: readonly Issue[]) => {
    for (const issue of issues) ctx.addIssue({ code: 'custom', message: issue.message, path: [...issue.path] });
    return z.NEVER;
  };
  if (value === undefined || value === null)
    return report([{ path: [], message: 'is required: {preset: NAME} or a custom scheme (algorithm, string, output …)' }]);
  if (typeof value !== 'object' || Array.isArray(value)) {
    return report([{ path: [], message: `expected {preset: NAME} (one of ${HMAC_PRESETS.join(', ')}) or a map describing the scheme` }]);
  }
  if ('preset' in value) {
    const parsed = presetBlock.safeParse(value);
    if (!parsed.success) return report(parsed.error.issues);
    return { kind: 'preset', preset: parsed.data.preset };
  }
  const parsed = customBlock.safeParse(value);
  if (!parsed.success) return report(parsed.error.issues);
  const checked = checkCustom(parsed.data);
  return Array.isArray(checked) ? report(checked) : checked;
});
