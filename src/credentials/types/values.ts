import { z } from 'zod';
import { parseByteSize } from '../../config/byte-size.ts';
import { parseDuration } from '../../config/duration.ts';
import { isLoopbackAddress } from '../../config/loopback.ts';

// Values more than one type's keys take.

/** A size written as text (16MiB, 512KiB, a number of bytes), kept as written in the store. */
export const byteSizeText = z.string().refine((text) => parseByteSize(text) !== undefined, {
  error: (issue) => `expected a size such as 16MiB, 512KiB or a number of bytes, got "${String(issue.input).slice(0, 40)}"`,
});

/** An https:// URL with no user, query or fragment (an API or token service keyway calls). */
export function httpsUrlOk(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

/** A token service keyway calls: an https:// URL, or http:// on loopback (a service beside keyway). */
export const tokenServiceUrl = z.string().refine((text) => {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || (url.protocol === 'http:' && (url.hostname === 'localhost' || isLoopbackAddress(url.hostname)));
  } catch {
    return false;
  }
}, 'expected an https:// URL (http:// only on loopback)');

const MAX_RENEW_FLOOR_MS = 3_600_000;

/**
 * renew_floor, on the types whose token keyway renews when an upstream answers 401 (OAuth, DPoP,
 * token exchange, minted): a 401 renews at most once per this long; within it the 401 goes to the
 * agent. 0s: every 401 renews (as before the floor).
 */
export const renewFloorText = z
  .string()
  .refine((text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms <= MAX_RENEW_FLOOR_MS;
  }, 'expected a duration from 0s to 1h, such as 30s')
  .meta({ description: 'A 401 renews the token at most once per this; within it the 401 goes to the agent. 0s: every 401 renews' })
  .default('30s');
