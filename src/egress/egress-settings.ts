import { readSecretRef, type Config } from '../config/index.ts';
import { egressProxyUrlError } from '../config/egress-url.ts';
import { KeywayError } from '../errors/index.ts';
import type { EgressSettings } from './upstream.ts';

/** egress.proxy read (its reference too) and checked, or undefined when keyway connects directly. Throws config_invalid. */
export function egressSettings(config: Config, env: NodeJS.ProcessEnv): EgressSettings | undefined {
  const { proxy, no_proxy } = config.egress;
  if (proxy === undefined) return undefined;
  let text: string;
  try {
    text = typeof proxy === 'string' ? proxy : readSecretRef(proxy, env, config.home).trim();
  } catch (err) {
    throw new KeywayError('config_invalid', `egress.proxy: ${(err as Error).message}`);
  }
  const error = egressProxyUrlError(text, true);
  if (error !== undefined) throw new KeywayError('config_invalid', `egress.proxy: ${error}`);
  return { url: new URL(text), noProxy: no_proxy, connectTo: config.egress.connect_to };
}
