import { presetScheme } from './presets.ts';
import { customScheme, type HmacScheme } from './scheme.ts';
import type { HmacSignConfig } from '../fields/sign-schema.ts';

/** The scheme a grant's validated `sign:` block describes. Build once per config load. */
export function compileHmacScheme(config: HmacSignConfig): HmacScheme {
  return config.kind === 'preset' ? presetScheme(config.preset) : customScheme(config);
}
