import { ProxyError } from '../../errors/index.ts';
import { parseAuthority, type Target } from '../target.ts';

/** The longest request head read to find the Host (Node's own default header limit). */
export const MAX_HEAD = 16 * 1024;

/** The request head of the first bytes, once it has all arrived (up to the blank line), else undefined. */
export function completeHead(bytes: Buffer): string | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  return end === -1 ? undefined : bytes.subarray(0, end).toString('latin1');
}

/**
 * Where a plain HTTP request redirected to keyway meant to go: its one Host header (`port`, the one
 * the connection was for, unless it names one). No Host, or two, is no destination keyway will guess at: the address the client
 * dialled is never used, so a forged Host sends nothing to the address it came from.
 */
export function hostOfHead(head: string, port = 80): Target {
  const lines = head.split('\r\n');
  const hosts = lines.slice(1).filter((line) => /^host[ \t]*:/i.test(line));
  if (hosts.length === 0) throw new ProxyError('no_destination', 'a plain HTTP request without a Host header: keyway cannot tell where it goes');
  if (hosts.length > 1) throw new ProxyError('host_mismatch', 'the request has more than one Host header');
  const value = hosts[0]!.slice(hosts[0]!.indexOf(':') + 1).trim();
  return parseAuthority(value, port);
}
