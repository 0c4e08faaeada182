import { isIP } from 'node:net';

/** `10.1.0.0/16`, `fd00::/8`, or a bare address (a /32 or /128). */
export function parseCidr(text: string): { net: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [net, bits] = text.trim().split('/');
  const family = isIP(net ?? '');
  if (!net || family === 0) return undefined;
  const max = family === 6 ? 128 : 32;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { net, prefix, family: family === 6 ? 'ipv6' : 'ipv4' };
}
