import type { TLSSocket } from 'node:tls';

// HTTP/2 frames written by hand (RFC 9113 4.1), for attacks no well-behaved client library will
// send: floods, resets, endless CONTINUATION. Header blocks use HPACK literals without indexing
// or Huffman coding (RFC 7541 6.2.2), which every decoder must accept.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 5.1). */
function hpackInt(value: number, prefixBits: number, firstByteFlags = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const bytes = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7), bytes]);
}

/** A header block of literal fields without indexing, in the order given. */
export function headerBlock(fields: Array<[string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

export function requestFields(authority: string, path: string, method = 'GET', extra: Array<[string, string]> = []): Array<[string, string]> {
  return [[':method', method], [':scheme', 'https'], [':authority', authority], [':path', path], ...extra];
}

export const settingsFrame = (entries: Array<[number, number]> = []) =>
  frame(
    FRAME.SETTINGS,
    0,
    0,
    Buffer.concat(
      entries.map(([id, value]) => {
        const b = Buffer.alloc(6);
        b.writeUInt16BE(id, 0);
        b.writeUInt32BE(value, 2);
        return b;
      }),
    ),
  );
export const settingsAck = () => frame(FRAME.SETTINGS, FLAG.ACK, 0);
export const rstStream = (streamId: number, code = 8 /* CANCEL */) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, streamId, b);
};
export const ping = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(n >>> 0, 4);
  return frame(FRAME.PING, 0, 0, b);
};

export interface ReadFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * Reads the frames keyway sends on `socket` (after TLS), as they arrive; answers its SETTINGS with
 * an ACK so its limits take effect (unless `ack` is false).
 */
export function frameReader(
  socket: TLSSocket,
  options: { ack?: boolean } = {},
): { frames: ReadFrame[]; closed: () => boolean; goaway: () => number | undefined } {
  const frames: ReadFrame[] = [];
  let buffer = Buffer.alloc(0);
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      const f: ReadFrame = { type: buffer[3]!, flags: buffer[4]!, streamId: buffer.readUInt32BE(5) & 0x7fffffff, payload: buffer.subarray(9, 9 + length) };
      buffer = buffer.subarray(9 + length);
      frames.push(f);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK) && options.ack !== false && socket.writable) socket.write(settingsAck());
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  return {
    frames,
    closed: () => closed,
    /** The error code of keyway's GOAWAY, if one came. */
    goaway: () => {
      const g = frames.find((f) => f.type === FRAME.GOAWAY);
      return g ? g.payload.readUInt32BE(4) : undefined;
    },
  };
}
