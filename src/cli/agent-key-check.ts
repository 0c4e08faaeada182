import { connect } from 'node:net';

// `keyway run` with a wrong agent key used to start the command, whose client then said only
// "CONNECT tunnel failed, response 407" (issue 86). keyway knows the agent, so the run asks the
// running keyway first: one CONNECT to keyway's own check host (keyway.internal, never forwarded)
// with the agent's credentials, read up to its status line, then closed. A 407 is said on stderr
// naming the agent and where its key comes from, and the command is not run; anything else (the
// tunnel opened, no answer within the bound, no keyway listening) leaves the run as it was.

const CHECK_TARGET = 'keyway.internal:443';
const ANSWER_MS = 3_000;

/** Whether the keyway behind `proxyUrl` (http://ID:KEY@HOST:PORT) refuses its credentials; false when it cannot tell. */
export async function agentKeyRefused(proxyUrl: string): Promise<boolean> {
  let url: URL;
  try {
    url = new URL(proxyUrl);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' || url.username === '') return false;
  const credentials = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host, port: Number(url.port || 80) });
    let head = '';
    const done = (refused: boolean) => {
      socket.destroy();
      resolve(refused);
    };
    socket.setTimeout(ANSWER_MS, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () =>
      socket.write(`CONNECT ${CHECK_TARGET} HTTP/1.1\r\nHost: ${CHECK_TARGET}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\n`),
    );
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const line = head.indexOf('\r\n');
      if (line === -1 && head.length < 1024) return;
      done(/^HTTP\/1\.[01] 407 /.test(head));
    });
    socket.once('end', () => done(false));
  });
}
