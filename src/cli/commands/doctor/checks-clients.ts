// One client run through keyway: its outcome, what to fix when it failed, and (with --url) that
// keyway's audit log shows its request, so a client that went around the proxy cannot pass.

import { type AuditLine, tailAudit } from '../../../audit/index.ts';
import { formatListen } from '../../../config/index.ts';
import { noAgentLine } from '../../agent-hint.ts';
import { keywayPaths } from '../../../paths.ts';
import type { ClientSpec } from './clients.ts';
import type { CheckResult, Context } from './context.ts';
import { runProcess } from './runner.ts';

export async function checkClient(ctx: Context, client: ClientSpec, env: Record<string, string>, seenAuditIds: Set<string>): Promise<CheckResult> {
  const found = await client.find(ctx, env);
  if ('missing' in found) return { check: client.name, status: 'skip', detail: found.missing };
  const url = ctx.target.url.href;
  const started = Date.now();
  const result = await runProcess(found.path, client.args(url, ctx.timeoutMs), { ...env, ...client.extraEnv }, ctx.timeoutMs + 2000);
  const outcome = client.outcome(result);
  const redact = (text: string) => redactKey(text, ctx.agent?.key);
  if ('error' in outcome) {
    return { check: client.name, status: 'fail', detail: `${found.path}: ${redact(outcome.error)}`, fix: fixFor(client, outcome.error) };
  }
  // For git the self-check path is not a repository: a 404 from keyway is the expected answer.
  const expected = ctx.target.selfCheck && client.name !== 'git' ? outcome.status === 200 : outcome.status >= 100;
  if (!expected) {
    return {
      check: client.name,
      status: 'fail',
      detail: `${found.path}: ${url} answered ${outcome.status}, not keyway's self-check`,
      fix: 'is the program at the proxy address keyway?',
    };
  }
  if (!ctx.target.selfCheck) {
    const seen = await auditShows(ctx, started, seenAuditIds, outcome.status);
    if (seen !== undefined && (seen.decision === 'deny' || seen.decision === 'error')) {
      // The client got an answer, but keyway's (a 403 with X-Keyway-Error, say): not a pass.
      const message = typeof seen['message'] === 'string' ? `: ${seen['message']}` : '';
      return {
        check: client.name,
        status: 'fail',
        detail: `${found.path}: keyway refused the request to ${ctx.target.host} (HTTP ${outcome.status}, ${seen.code ?? seen.decision}${message})`,
        fix: `see ${seen.code ?? 'the code'} in docs/errors.md; \`keyway audit query --decision ${seen.decision}\` shows the line`,
      };
    }
    if (seen === undefined) {
      return {
        check: client.name,
        status: 'fail',
        detail: `${found.path}: got ${outcome.status} from ${ctx.target.host}, but this home's audit log (${keywayPaths(ctx.config).audit}) shows no request for it`,
        fix: `the client went around the proxy (check HTTPS_PROXY/https_proxy and NO_PROXY for ${client.name}), or the proxy at ${formatListen(ctx.proxy)} runs on another home (--home)`,
      };
    }
  }
  return { check: client.name, status: 'ok', detail: `${found.path} reached ${url} through keyway (HTTP ${outcome.status}) and trusts its CA` };
}

function fixFor(client: ClientSpec, error: string): string {
  if (/certificate|SSL|TLS|self.signed|issuer|CERT_|verif/i.test(error))
    return `${client.name} does not trust keyway's CA: ${client.trustVars} must point at keyway's CA or bundle (eval "$(keyway env)")`;
  if (/407/.test(error)) return noAgentLine('doctor');
  if (/ENOTFOUND|EAI_AGAIN|resolve host|getaddrinfo|Name or service not known|NameResolution/i.test(error)) {
    return `${client.name} did not use the proxy (it looked the name up itself): check HTTPS_PROXY/https_proxy${client.name === 'node' ? ' and NODE_USE_ENV_PROXY=1 (Node 24 or later)' : ''}`;
  }
  if (/ECONNREFUSED|refused|Failed to connect|Unable to connect|ProxyError/i.test(error))
    return 'it could not reach the proxy: check HTTPS_PROXY against the proxy address';
  if (/timed out|timeout/i.test(error)) return 'raise --timeout, or check that the proxy is not stuck';
  return `run \`keyway run -- ${client.name} …\` by hand to see more`;
}

/**
 * keyway's audit line for the target host written since `since`, not counted before (its outcome,
 * not the write-ahead `sent` line, when both are there in time), or undefined.
 */
async function auditShows(ctx: Context, since: number, seenIds: Set<string>, status: number): Promise<AuditLine | undefined> {
  const path = keywayPaths(ctx.config).audit;
  // The line is written as the response ends, before the client can exit: a short wait is plenty.
  const deadline = Date.now() + 1000;
  let sent: AuditLine | undefined;
  for (let i = 0; i < 20; i++) {
    for await (const line of tailAudit(path, { lines: 200, follow: false })) {
      if (seenIds.has(line.id)) continue;
      if (line.host.toLowerCase() !== ctx.target.host.toLowerCase() || line.port !== ctx.target.port) continue;
      if (Date.parse(line.ts) < since - 1000) continue;
      // Another request's line (an earlier run's 407, just before this one): not the answer this client got.
      if (typeof line.status === 'number' && line.status !== status) continue;
      if ((line as { phase?: string }).phase === 'sent') {
        sent ??= line;
        continue;
      }
      seenIds.add(line.id);
      return line;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (sent !== undefined) seenIds.add(sent.id);
  return sent;
}

function redactKey(text: string, key: string | undefined): string {
  if (key === undefined || key === '') return text;
  return text.split(key).join('[redacted]').split(encodeURIComponent(key)).join('[redacted]');
}
