// A raw client for the hostile suites: one case = one fresh connection to keyway, over one of three
// legs (absolute-form plain HTTP, plain HTTP inside a CONNECT, TLS inside a CONNECT trusting keyway's
// CA explicitly), the case's bytes written as they are, keyway's answers framed strictly. Every
// wait is bounded: a complete request left unanswered for HANG_MS is a hang.

import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { frameResponse, header } from './frames.ts';
import { slack } from '../../helpers/load.ts';

export type Leg = 'absolute' | 'tunnel-plain' | 'tunnel-tls';

export interface CaseInput {
  leg: Leg;
  /** For the tunnel legs: the CONNECT authority and the TLS server name. */
  authority?: string;
  servername?: string;
  bytes: Buffer;
  /** Methods of the requests in order, as a strict reader frames them (HEAD has no response body). */
  methods: string[];
  /** How many final responses a complete, clean case must get; undefined when the case is not clean. */
  expected: number | undefined;
}

export interface Answer {
  status: number;
  error: string | undefined;
  body: string;
  /** Header fields as received, names lower-cased. */
  headers: Array<[string, string]>;
}

export interface CaseOutcome {
  /** The loopback address the case came from (keyway's audit lines name it as `client`). */
  source: string;
  connectStatus?: number;
  answers: Answer[];
  /** keyway sent bytes a strict reader cannot frame as a response. */
  malformed?: string;
  /** keyway closed in the middle of an answer (its way of failing after the head went out). */
  cutShort?: boolean;
  /** A complete request, or a started response, was left hanging past HANG_MS. */
  hang: boolean;
  closed: boolean;
  ms: number;
}

/**
 * 2 s on an idle machine. On a busy one keyway answers late for want of CPU, not because it waits:
 * stretched by the load measured as the suite starts (test/helpers/load.ts), at most 8 s, still short
 * of keyway's own timeouts (10 s and up), which a real hang would run into.
 */
export const HANG_MS = slack(2_000, 8_000);
/**
 * A case that is not clean and gets no answer this long is taken as keyway waiting for more bytes:
 * 600 ms idle, stretched by the measured load (a refusal late for want of CPU is still a refusal).
 */
const SILENT_MS = Math.min(slack(600, 4_000), HANG_MS - 1_000);
/** After the last answer, this much quiet ends a case whose answer count is not known. */
const IDLE_MS = 40;

let nextSource = 0;
/** Loopback source addresses in turn, so a million short connections do not run out of ports. */
function sourceAddress(): string {
  nextSource = (nextSource + 1) % 200;
  return `127.0.0.${nextSource + 2}`;
}

export async function runCase(proxyPort: number, keywayCa: string, input: CaseInput): Promise<CaseOutcome> {
  const started = performance.now();
  const source = sourceAddress();
  const socket = netConnect({ host: '127.0.0.1', port: proxyPort, localAddress: source });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  try {
    let stream: Duplex = socket;
    if (input.leg !== 'absolute') {
      const status = await connectThrough(socket, input.authority ?? '');
      if (status !== 200) return { source, connectStatus: status, answers: [], hang: false, closed: true, ms: performance.now() - started };
      if (input.leg === 'tunnel-tls') stream = await startTls(socket, input.servername ?? '', keywayCa);
    }
    return { source, ...(await collect(stream, input, started)) };
  } finally {
    socket.destroy();
  }
}

/** Writes a CONNECT and reads its answer head; 0 when keyway closed without one. */
export function connectThrough(socket: Socket, authority: string): Promise<number> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(-1), HANG_MS);
    const finish = (status: number) => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(status);
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.pause();
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      finish(Number(buffered.subarray(0, 12).toString('latin1').split(' ')[1] ?? 0));
    };
    socket.on('data', onData);
    socket.once('close', () => finish(0));
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

export function startTls(socket: Socket, servername: string, ca: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername, ca }, () => resolve(tls));
    tls.once('error', reject);
    setTimeout(() => reject(new Error('TLS handshake through keyway took too long')), HANG_MS).unref();
  });
}

const endsCleanly = (buffered: Buffer, end: number) => end === buffered.length || buffered.subarray(end, end + 7).toString('latin1') === 'HTTP/1.';

function collect(stream: Duplex, input: CaseInput, started: number): Promise<Omit<CaseOutcome, 'source'>> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    let at = 0;
    const answers: Answer[] = [];
    let closed = false;
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (extra: Partial<Omit<CaseOutcome, 'source'>> = {}) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(idle);
      stream.off('data', onData);
      resolve({ answers, hang: false, closed, ms: performance.now() - started, ...extra });
    };
    // A clean case must be answered in full within HANG_MS. Otherwise silence means keyway waits
    // for bytes the case never sends, which is its right; but a started answer must still finish.
    // An answer already under way when the silence allowance runs out gets the full hang budget.
    let deadline = setTimeout(
      () => {
        if (input.expected === undefined && buffered.length > at) {
          deadline = setTimeout(() => finish({ hang: true }), HANG_MS - SILENT_MS);
          return;
        }
        finish({ hang: input.expected !== undefined });
      },
      input.expected !== undefined ? HANG_MS : SILENT_MS,
    );
    const frameMore = (): boolean => {
      for (;;) {
        const guess = input.methods[answers.length] ?? 'GET';
        let result = frameResponse(buffered, at, guess, closed);
        // Which request a lenient parser answers is a guess for a case that is not clean: if the
        // other reading (HEAD: no body, or not HEAD) frames an answer that ends where the bytes
        // end or where the next answer starts, take that one.
        if (result.kind !== 'message' || !endsCleanly(buffered, result.frame.end)) {
          if (input.expected === undefined) {
            const other = frameResponse(buffered, at, guess === 'HEAD' ? 'GET' : 'HEAD', closed);
            if (other.kind === 'message' && endsCleanly(buffered, other.frame.end)) result = other;
          }
        }
        if (result.kind === 'incomplete') return false;
        if (result.kind === 'invalid') {
          finish({ malformed: `${result.reason}: ${buffered.subarray(at, at + 200).toString('latin1')}` });
          return true;
        }
        at = result.frame.end;
        const status = Number(result.frame.first);
        if (status < 200 && status !== 101) continue; // interim: 100 Continue
        answers.push({
          status,
          error: header(result.frame, 'x-keyway-error'),
          body: result.frame.body.subarray(0, 2048).toString('latin1'),
          headers: result.frame.headers,
        });
        if (status === 101 || header(result.frame, 'connection')?.toLowerCase() === 'close') {
          finish();
          return true;
        }
        if (input.expected !== undefined && answers.length >= input.expected) {
          finish();
          return true;
        }
      }
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (frameMore()) return;
      if (answers.length > 0 && buffered.length === at) {
        clearTimeout(idle);
        idle = setTimeout(() => finish(), IDLE_MS);
      }
    };
    const onClose = () => {
      closed = true;
      if (!frameMore()) {
        const partial = buffered.length > at;
        finish(partial ? { cutShort: true } : {});
      }
    };
    stream.on('data', onData);
    stream.resume(); // connectThrough paused it to hand over what followed the CONNECT answer
    stream.once('end', onClose);
    stream.once('close', onClose);
    stream.once('error', onClose);
    stream.write(input.bytes);
  });
}
