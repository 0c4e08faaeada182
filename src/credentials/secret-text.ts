import type { GrantType } from '../config/index.ts';
import { isKeywayPlaceholder } from './body-swap/index.ts';

// Two mistakes a pasted secret makes, caught where it comes in (issue 48). Messages never quote it.

/**
 * The prefix a grant's injection adds before the secret (`Bearer ` for bearer grants and a format of
 * "Bearer {secret}", `token ` for "token {secret}"), or '' when it adds none.
 */
export function injectedPrefix(type: GrantType, format: string | undefined): string {
  const effective = format ?? (type === 'bearer' ? 'Bearer {secret}' : '{secret}');
  return effective.slice(0, effective.indexOf('{secret}'));
}

/**
 * Why this text cannot be the grant's secret, or undefined: keyway's placeholder, or a token pasted
 * with the prefix the injection adds itself (it would go out as `Bearer Bearer …`).
 */
export function secretTextProblem(type: GrantType, format: string | undefined, text: string): string | undefined {
  if (isKeywayPlaceholder(text)) return "it is keyway's placeholder (keyway-placeholder), not a secret: give the real token";
  const prefix = injectedPrefix(type, format).trim();
  if (prefix !== '' && new RegExp(`^\\s*${escapeRegExp(prefix)}\\s+\\S`, 'i').test(text)) {
    return `it begins with "${prefix} ", which keyway adds itself (${format ?? `${prefix} {secret}`}): give the token alone, without "${prefix} "`;
  }
  return undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
