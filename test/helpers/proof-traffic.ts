// Real traffic for the policy proofs' tests (`keyway policy check | test | diff`): a loopback
// upstream that answers every request 200 "ok", and one request through the proxy with curl as an
// agent whose key is `AGENT-key`, read back as the status and keyway's error code. What curl
// printed goes to `outputs`, which the tests search for the grant's secret.
import { curl } from './clients.ts';
import type { TestProxy } from './keyway.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

/** An upstream that answers everything 200 "ok". */
export function startOkUpstream(): Promise<TestUpstream> {
  return startUpstream({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return true;
    },
  });
}

/** One request through `proxy` with curl, as AGENT (key `AGENT-key`): the status and keyway's error code. */
export async function sendAs(
  proxy: TestProxy,
  outputs: string[],
  agent: string,
  method: string,
  url: string,
  extra: string[] = [],
): Promise<{ status: number; code: string | undefined }> {
  const r = await curl(
    ['-X', method, ...extra, '-o', '/dev/null', '-D', '-', '--proxy', `http://${agent}:${agent}-key@127.0.0.1:${proxy.port}`, '--cacert', proxy.caPath, url],
    {},
  );
  outputs.push(r.stdout, r.stderr);
  // The last status line: curl shows the CONNECT's own 200 first.
  const status = Number([...r.stdout.matchAll(/^HTTP\/[\d.]+ (\d{3})/gm)].at(-1)?.[1]);
  const code = /^x-keyway-error: (\S+)/im.exec(r.stdout)?.[1];
  return { status, code };
}
