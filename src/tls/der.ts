// The little DER (X.690) a leaf certificate needs, written directly: a minted leaf is a few fixed
// parts (made once per minter) around a host name, a serial and two times, so building it as bytes
// costs microseconds where forge's object model and its asn1.toDer cost ~1 ms per new host
// (docs/perf/breakdown.md, s5). Only what leaf.ts writes is here; it parses one thing: a TLV's extent.

/** A tag-length-value: `tag` one byte (all tags used here are low-numbered), content concatenated. */
export function tlv(tag: number, ...content: readonly Buffer[]): Buffer {
  const body = content.length === 1 ? (content[0] as Buffer) : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthOf(body.length), body]);
}

function lengthOf(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const seq = (...content: readonly Buffer[]): Buffer => tlv(0x30, ...content);
export const set = (...content: readonly Buffer[]): Buffer => tlv(0x31, ...content);
export const octets = (content: Buffer): Buffer => tlv(0x04, content);
/** A BIT STRING of whole bytes (no unused bits). */
export const bits = (content: Buffer): Buffer => tlv(0x03, Buffer.from([0]), content);
export const utf8 = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
export const TRUE = Buffer.from('0101ff', 'hex');
export const NULL = Buffer.from('0500', 'hex');

/** An OBJECT IDENTIFIER from its dotted form (only a handful, encoded once at load). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * (arcs[0] ?? 0) + (arcs[1] ?? 0)];
  for (const arc of arcs.slice(2)) {
    const base128 = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A positive INTEGER from big-endian magnitude bytes (a 00 is prefixed when the top bit is set). */
export function positiveInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return tlv(0x02, ((trimmed[0] ?? 0) & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, Zulu. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`no certificate time for year ${year}`);
  return year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'latin1')) : tlv(0x18, Buffer.from(digits, 'latin1'));
}

/** The [start, end) of the TLV at `offset` in `der`, and where its content starts. */
export function extentAt(der: Buffer, offset: number): { start: number; contentStart: number; end: number } {
  if (offset + 2 > der.length) throw new RangeError('DER: truncated');
  const first = der[offset + 1] as number;
  let length = first;
  let contentStart = offset + 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > der.length) throw new RangeError('DER: bad length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[contentStart + i] as number);
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > der.length) throw new RangeError('DER: truncated');
  return { start: offset, contentStart, end };
}

/**
 * The subject Name of a certificate, as its exact DER bytes: a leaf's issuer is copied from its CA's
 * subject byte for byte, so name matching never depends on re-encoding it.
 */
export function certificateSubject(certDer: Buffer): Buffer {
  const certificate = extentAt(certDer, 0);
  const tbs = extentAt(certDer, certificate.contentStart);
  let at = tbs.contentStart;
  if (certDer[at] === 0xa0) at = extentAt(certDer, at).end; // [0] version
  // serialNumber, signature, issuer, validity, then subject.
  for (let i = 0; i < 4; i++) at = extentAt(certDer, at).end;
  const subject = extentAt(certDer, at);
  if (certDer[at] !== 0x30) throw new RangeError('DER: the subject is not a SEQUENCE');
  return certDer.subarray(subject.start, subject.end);
}

const SUBJECT_KEY_IDENTIFIER = oid('2.5.29.14');

/**
 * The keyIdentifier of a certificate's subjectKeyIdentifier extension (RFC 5280 4.2.1.2), or
 * undefined when it has none. Read from the DER: TBSCertificate's optional [1] and [2] unique ids are
 * stepped over, then each Extension of [3] is { extnID, critical?, extnValue OCTET STRING }, whose
 * content here is itself an OCTET STRING.
 */
export function subjectKeyIdentifierOf(certDer: Buffer): Buffer | undefined {
  const certificate = extentAt(certDer, 0);
  const tbs = extentAt(certDer, certificate.contentStart);
  let at = tbs.contentStart;
  if (certDer[at] === 0xa0) at = extentAt(certDer, at).end; // [0] version
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
  for (let i = 0; i < 6; i++) at = extentAt(certDer, at).end;
  while (at < tbs.end && certDer[at] !== 0xa3) at = extentAt(certDer, at).end; // [1], [2] unique ids
  if (at >= tbs.end) return undefined;
  const extensions = extentAt(certDer, extentAt(certDer, at).contentStart); // [3] { SEQUENCE OF Extension }
  for (let ext = extensions.contentStart; ext < extensions.end; ext = extentAt(certDer, ext).end) {
    const extension = extentAt(certDer, ext);
    const id = extentAt(certDer, extension.contentStart);
    if (!certDer.subarray(id.start, id.end).equals(SUBJECT_KEY_IDENTIFIER)) continue;
    let value = id.end;
    if (certDer[value] === 0x01) value = extentAt(certDer, value).end; // critical
    const outer = extentAt(certDer, value);
    const inner = extentAt(certDer, outer.contentStart);
    if (certDer[value] !== 0x04 || certDer[inner.start] !== 0x04) throw new RangeError('DER: a subjectKeyIdentifier that is not an OCTET STRING');
    return certDer.subarray(inner.contentStart, inner.end);
  }
  return undefined;
}
