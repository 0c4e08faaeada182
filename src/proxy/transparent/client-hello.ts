import { isIP } from 'node:net';

// The server name a TLS client asks for (SNI, RFC 6066 3), read from its ClientHello before any
// TLS is done: a connection redirected to keyway's transparent listener carries no CONNECT line,
// and the name is the only word of where it meant to go. Read only, never trusted for more: keyway
// resolves the name itself, and the destination address the client dialled is ignored.

/** What the first bytes say: wait for more, a name, a ClientHello without one, or not TLS at all. */
export type HelloReading = { kind: 'more' } | { kind: 'name'; host: string } | { kind: 'no-name' } | { kind: 'not-tls'; reason: string };

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const SERVER_NAME = 0x0000;
const HOST_NAME = 0x00;
/** A TLS record's payload is at most 2^14 bytes; a ClientHello that needs more records is not read. */
export const MAX_HELLO_RECORD = 5 + 16_384;

/** Reads the ClientHello in the first TLS record of `bytes` (what has arrived so far). */
export function readClientHello(bytes: Buffer): HelloReading {
  if (bytes.length === 0) return { kind: 'more' };
  if (bytes[0] !== HANDSHAKE) return { kind: 'not-tls', reason: 'the first byte is not a TLS handshake' };
  if (bytes.length < 5) return { kind: 'more' };
  const recordLength = bytes.readUInt16BE(3);
  if (recordLength > 16_384) return { kind: 'not-tls', reason: 'a TLS record longer than TLS allows' };
  if (bytes.length < 5 + recordLength) return { kind: 'more' };
  const record = bytes.subarray(5, 5 + recordLength);
  const reader = new Reader(record);
  try {
    if (reader.u8() !== CLIENT_HELLO) return { kind: 'not-tls', reason: 'the first handshake message is not a ClientHello' };
    const helloLength = reader.u24();
    // A ClientHello split over several records: rare (huge key shares), and not read.
    if (helloLength > record.length - 4) return { kind: 'not-tls', reason: 'a ClientHello split over several TLS records' };
    reader.skip(2 + 32); // legacy_version, random
    reader.skip(reader.u8()); // legacy_session_id
    reader.skip(reader.u16()); // cipher_suites
    reader.skip(reader.u8()); // legacy_compression_methods
    if (reader.left() === 0) return { kind: 'no-name' };
    const extensions = new Reader(reader.take(reader.u16()));
    let found: HelloReading = { kind: 'no-name' };
    let seen = false;
    while (extensions.left() > 0) {
      const type = extensions.u16();
      const body = extensions.take(extensions.u16());
      if (type !== SERVER_NAME) continue;
      // Two server_name extensions: two readings of where the client goes. Refused.
      if (seen) return { kind: 'not-tls', reason: 'a ClientHello with two server_name extensions' };
      seen = true;
      found = serverName(body);
    }
    return found;
  } catch {
    return { kind: 'not-tls', reason: 'a ClientHello keyway cannot parse' };
  }
}

/** The one host_name of a server_name extension, checked as a DNS name (RFC 6066: no IP literals, no trailing dot). */
function serverName(body: Buffer): HelloReading {
  const list = new Reader(body);
  const names = new Reader(list.take(list.u16()));
  let host: string | undefined;
  while (names.left() > 0) {
    const type = names.u8();
    const name = names.take(names.u16());
    if (type !== HOST_NAME) continue;
    if (host !== undefined) return { kind: 'not-tls', reason: 'a server_name extension with two host names' };
    host = name.toString('latin1');
  }
  if (host === undefined) return { kind: 'no-name' };
  if (isIP(host) !== 0) return { kind: 'not-tls', reason: 'a server name that is an IP address (RFC 6066 allows none)' };
  if (!/^(?=.{1,253}$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(host)) {
    return { kind: 'not-tls', reason: 'a server name that is not a DNS name' };
  }
  return { kind: 'name', host: host.toLowerCase() };
}

class Reader {
  readonly #bytes: Buffer;
  #at = 0;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }
  left(): number {
    return this.#bytes.length - this.#at;
  }
  #need(n: number): void {
    if (n > this.left()) throw new RangeError('short');
  }
  u8(): number {
    this.#need(1);
    return this.#bytes[this.#at++]!;
  }
  u16(): number {
    this.#need(2);
    const v = this.#bytes.readUInt16BE(this.#at);
    this.#at += 2;
    return v;
  }
  u24(): number {
    this.#need(3);
    const v = this.#bytes.readUIntBE(this.#at, 3);
    this.#at += 3;
    return v;
  }
  skip(n: number): void {
    this.#need(n);
    this.#at += n;
  }
  take(n: number): Buffer {
    this.#need(n);
    const out = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
}
