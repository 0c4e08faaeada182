// HMAC request signing (`type: hmac`): validate the `sign:` block, compile it once, sign each
// request with signHmacRequest. Pure: no I/O, no clock or randomness but what the caller passes.

export { compileHmacScheme } from './compile.ts';
export { HmacSignError, type HmacSignErrorCode } from './errors.ts';
export { decodeKey, type HmacMaterial, type KeyEncoding, keyEncodingProblem, parseHmacMaterial } from './material.ts';
export { hmacMaterialProblem } from './material-fit.ts';
export {
  HMAC_PRESETS,
  type HmacPresetName,
  type HmacSignConfig,
  hmacSignSchema,
  type NonceFormat,
  type Placement,
  type TimestampFormat,
} from '../fields/sign-schema.ts';
export type { HmacScheme, MessageInput } from './scheme.ts';
export { type HmacRequest, type HmacSigned, signHmacRequest } from './sign.ts';
export { fixedSources, formatTimestamp, type SigningSources, systemSources } from './sources.ts';
