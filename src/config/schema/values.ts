import { isIP } from 'node:net';
import { z } from 'zod';
import { parseByteSize } from '../byte-size.ts';
import { parseCidr } from '../cidr.ts';
import { parseDomainPatternStrict } from '../domain-breadth.ts';
import type { DomainPattern } from '../domain-pattern.ts';
import { formatDuration, parseDuration } from '../duration.ts';
import { domainText, messageCheck } from '../grant-fields.ts';
import { parseListen, type ListenAddress } from '../listen.ts';
import { isLoopbackAddress } from '../loopback.ts';
import { egressProxyUrlError } from '../egress-url.ts';
import { parseSecretRef, type SecretRef } from '../secret-ref.ts';

// The config's values, each read once at the edge into what keyway uses (milliseconds, bytes,
// addresses, references) with a message that says what to write. The sections' schemas
// (config.ts, grants.ts, agents.ts) are made of these.

/** zod's "expected string" for a value keyway reads as text, in words that say what to write. */
export const text = (what: string) => z.string({ error: (issue) => (issue.code === 'invalid_type' ? `expected ${what}` : undefined) });

export const listen = text('HOST:PORT such as 127.0.0.1:8787').transform((text, ctx): ListenAddress => {
  const parsed = parseListen(text);
  if (!parsed) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT, got "${text}"` });
    return z.NEVER;
  }
  return parsed;
});

export const duration = text('a duration like 60s (or 500ms, 15m, 1h, 7d)').transform((text, ctx): number => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like 60s (or 500ms, 15m, 1h, 7d), got "${text}"` });
    return z.NEVER;
  }
  return ms;
});

export const secretRef = text('a reference, env:NAME or file:PATH').transform((text, ctx): SecretRef => {
  const ref = parseSecretRef(text);
  if (!ref) {
    // Never echo the value: someone may have pasted the secret itself here.
    ctx.addIssue({ code: 'custom', message: 'expected a reference, env:NAME or file:PATH (never the secret itself)' });
    return z.NEVER;
  }
  return ref;
});

/** 0 (off, or at once) or a duration. */
export const zeroOrDuration = z.union([z.literal(0), z.literal('0'), duration]).transform((value): number => (value === '0' ? 0 : value));

/** A duration between `min` and `max` (milliseconds), named in the message as written. */
export const durationWithin = (min: number, max: number) =>
  duration.refine((ms) => ms >= min && ms <= max, { message: `expected a duration from ${formatDuration(min)} to ${formatDuration(max)}` });

// Checked by domainText, so the pattern it parses to is never an error string here.
export const toPattern = (text: string) => parseDomainPatternStrict(text) as DomainPattern;
export const domain = domainText.transform(toPattern);

/** A size in bytes: a number, or a string such as 512KiB, 50MiB, 1GB (KiB = 1024, KB = 1000). */
export const byteSize = z.union([z.number(), z.string()]).transform((value, ctx): number => {
  const bytes = typeof value === 'number' ? value : (parseByteSize(value) ?? NaN);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 50MiB, 512KiB or a number of bytes, got "${String(value)}"` });
    return z.NEVER;
  }
  return bytes;
});

export const ipAddress = z.string().refine((text) => isIP(text) !== 0, { message: 'expected an IP address' });

export const cidr = z.string().refine((text) => typeof parseCidr(text) !== 'string', { message: 'expected a CIDR range such as 10.1.0.0/16 or fd00::/8' });

export const httpsUrl = z.string().refine(
  (text) => {
    try {
      const url = new URL(text);
      if (url.protocol === 'https:') return true;
      return url.protocol === 'http:' && (url.hostname === 'localhost' || isLoopbackAddress(url.hostname));
    } catch {
      return false;
    }
  },
  { message: 'expected an https:// URL (http:// only on loopback)' },
);

/** A duration above zero (a timeout, an interval). */
export const positiveDuration = duration.refine((ms) => ms > 0, { message: 'expected a duration above zero' });

/** egress.proxy written out: an http:// or https:// URL of a host and port, no credentials (those go by reference). */
export const egressProxy = text('a proxy URL (http://host:port) or a reference, env:NAME or file:PATH').transform((text, ctx): string | SecretRef => {
  if (/^(env|file):/.test(text)) {
    const ref = parseSecretRef(text);
    if (ref) return ref;
    ctx.addIssue({ code: 'custom', message: 'expected a reference, env:NAME or file:PATH' });
    return z.NEVER;
  }
  // Never echoed: the URL may carry a password.
  const error = egressProxyUrlError(text, false);
  if (error === undefined) return text;
  ctx.addIssue({ code: 'custom', message: error });
  return z.NEVER;
});

/** An egress.no_proxy entry: a host name (with an optional leading `.` or `*.`), an IP address or a CIDR range. */
export const noProxyEntry = z.string().check(
  messageCheck((text) => {
    if (isIP(text) !== 0) return undefined;
    if (text.includes('/')) return typeof parseCidr(text) === 'string' ? `"${text}" is not a CIDR range` : undefined;
    return /^(\*\.|\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(text)
      ? undefined
      : `"${text}" is not a host name, address or CIDR range`;
  }),
);
