import type { Socket } from 'node:net';

/**
 * The first bytes of a connection, read until `enough` has what it needs (a ClientHello, a request
 * head), `max` bytes, `ms` or the client's hang-up, whichever comes first. The socket is left
 * paused with nothing consumed but what is returned, to be handed on with those bytes in front.
 */
export function readPrefix<T>(
  socket: Socket,
  max: number,
  ms: number,
  enough: (bytes: Buffer) => T | undefined,
): Promise<{ bytes: Buffer; found: T | undefined }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (found: T | undefined) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.pause();
      resolve({ bytes: Buffer.concat(chunks, size), found });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      const bytes = Buffer.concat(chunks, size);
      const found = enough(bytes);
      if (found !== undefined || size >= max) settle(found);
    };
    const onGone = () => settle(undefined);
    const timer = setTimeout(onGone, ms);
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
  });
}
