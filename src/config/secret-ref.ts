import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KeywayError } from '../errors/index.ts';

// Secrets never sit in the config file itself: only references to where they live.
export type SecretRef = { kind: 'env'; name: string } | { kind: 'file'; path: string };

export function parseSecretRef(text: string): SecretRef | undefined {
  if (text.startsWith('env:') && /^[A-Za-z_][A-Za-z0-9_]*$/.test(text.slice(4))) {
    return { kind: 'env', name: text.slice(4) };
  }
  if (text.startsWith('file:') && text.length > 5) return { kind: 'file', path: text.slice(5) };
  return undefined;
}

/** Empty or only whitespace: never usable as secret material (an empty key would match an empty password). */
export function isBlankSecret(value: string): boolean {
  return value.trim().length === 0;
}

/**
 * Reads the referenced secret. Throws a message that names the source, never the value. An empty or
 * whitespace-only value is refused: a file truncated by mistake or a variable set to "" must not turn
 * into a credential that an empty password matches.
 */
export function readSecretRef(ref: SecretRef, env: NodeJS.ProcessEnv, baseDir: string): string {
  if (ref.kind === 'env') {
    const value = env[ref.name];
    if (value === undefined) {
      throw new KeywayError(
        'config_invalid',
        `environment variable ${ref.name} is not set (keyway reads it from its own environment as it started: start keyway with it set, or keep the secret in the store with \`keyway secrets set\`)`,
      );
    }
    if (isBlankSecret(value)) throw new KeywayError('config_invalid', `environment variable ${ref.name} is empty`);
    return value;
  }
  const path = resolve(baseDir, ref.path);
  let value: string;
  try {
    value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new KeywayError('config_invalid', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (isBlankSecret(value)) throw new KeywayError('config_invalid', `file ${path} is empty`);
  return value;
}
