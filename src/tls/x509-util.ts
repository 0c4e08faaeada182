// Helpers shared by the CA and the leaf minter that need no forge: a keyway that starts with its CA
// loads none of forge (the leaf is written as DER: leaf.ts, der.ts).
import { randomBytes } from 'node:crypto';

/** 16 random bytes as hex, top bit clear so the INTEGER is positive, second bit set so DER needs no 00 pad. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

export const HOUR_MS = 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;

/** A certificate's DER as PEM: base64 in 64-character lines, LF line ends. */
export function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
