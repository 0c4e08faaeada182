// The s8/s9 host on the bench upstream, covered by keyway's aws_sigv4 grant. The bench client sends
// its requests unsigned; keyway must sign each with the bench's key. Every request is checked for
// keyway's signature (AWS4-HMAC-SHA256 with the bench key id, the grant's region and service, an
// x-amz-date); the first few and then one in VERIFY_EVERY are verified in full, body hash included,
// with AWS's own signer (test/helpers/sigv4-verifier.ts). Not every one: the verifier runs in the
// bench's own process, which also drives the load, and the integration tests verify every request.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AwsKey, verifySigV4 } from '../test/helpers/sigv4-verifier.ts';

export const AWS_REGION = 'us-east-1';
export const AWS_SERVICE = 's3';
const VERIFY_FIRST = 8;
const VERIFY_EVERY = 500;

export interface AwsHostCounts {
  total: number;
  /** With keyway's signature: the bench key id and the grant's scope. */
  signed: number;
  /** Without it (unsigned, another key, another scope): answered 401, and a benchmark error. */
  refused: number;
  /** Of the signed ones, verified in full with AWS's signer: passed and failed. */
  verified: number;
  verifyFailed: number;
  /** The first refusal or failed verification, for the report. */
  firstProblem: string | undefined;
}

export interface AwsHost {
  host: string;
  counts: AwsHostCounts;
  /** Checks the request, then hands it to `serve` (the upstream's /small and /upload). */
  onRequest(req: IncomingMessage, res: ServerResponse, serve: (req: IncomingMessage, res: ServerResponse) => void): void;
  /** Waits for verifications still running (the last sampled requests of a run). */
  settled(): Promise<void>;
}

/** A bench key in AWS's shape: an AKIA… id and a 40-character secret. */
export function newBenchAwsKey(): AwsKey {
  const id = `AKIAKWBENCH${randomBytes(8).toString('hex').toUpperCase()}`.slice(0, 20);
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64') };
}

export function awsHost(host: string, key: AwsKey): AwsHost {
  const counts: AwsHostCounts = { total: 0, signed: 0, refused: 0, verified: 0, verifyFailed: 0, firstProblem: undefined };
  const credential = new RegExp(
    `^AWS4-HMAC-SHA256 Credential=${key.accessKeyId}/\\d{8}/${AWS_REGION}/${AWS_SERVICE}/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`,
  );
  const pending = new Set<Promise<void>>();
  const problem = (what: string) => {
    counts.firstProblem ??= what;
  };

  const verify = (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    const done = new Promise<void>((resolve) => req.once('end', resolve).once('error', resolve))
      .then(() =>
        verifySigV4(
          { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headersDistinct, body: Buffer.concat(chunks) },
          { keys: [key], region: AWS_REGION, service: AWS_SERVICE },
        ),
      )
      .then((v) => {
        if (v.ok) counts.verified++;
        else {
          counts.verifyFailed++;
          problem(`${req.method} ${req.url}: ${v.code}: ${v.reason}`);
        }
      })
      .finally(() => pending.delete(done));
    pending.add(done);
  };

  return {
    host,
    counts,
    onRequest(req, res, serve) {
      counts.total++;
      const authorization = req.headers.authorization ?? '';
      if (!credential.test(authorization) || req.headers['x-amz-date'] === undefined) {
        counts.refused++;
        problem(`${req.method} ${req.url}: not signed by keyway with the bench key (Authorization: ${authorization ? authorization.split(' ')[0] : 'none'})`);
        req.resume();
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"not signed by keyway with the bench key"}');
        return;
      }
      counts.signed++;
      // Collects the body beside `serve`'s own reading: both listen to the same 'data' events.
      if (counts.signed <= VERIFY_FIRST || counts.signed % VERIFY_EVERY === 0) verify(req);
      serve(req, res);
    },
    settled: async () => {
      await Promise.all([...pending]);
    },
  };
}
