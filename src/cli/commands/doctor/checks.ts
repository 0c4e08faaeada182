// The checks in order; a check that cannot run (an earlier one failed) is reported as skip, with why.

import { join } from 'node:path';
import { formatListen } from '../../../config/index.ts';
import { keywayPaths } from '../../../paths.ts';
import { SELF_CHECK_HOST } from '../../../proxy/self-check.ts';
import type { CommandIO } from '../../io.ts';
import { variablesFor } from '../env.ts';
import { checkBundle, checkCaCert, checkCaKey } from './checks-ca.ts';
import { checkClient } from './checks-clients.ts';
import { checkUserNode } from './checks-node.ts';
import { checkAdmin, checkProxy } from './checks-proxy.ts';
import { checkThroughProxy } from './checks-through.ts';
import { checkCheckpointKey, checkEgressProxy, checkIdentityIssuers } from './checks-evidence.ts';
import { checkSecretsReach } from './checks-reach.ts';
import { checkStore } from './checks-home.ts';
import { checkRefusedCredentials } from './checks-refused.ts';
import { checkModelPrices } from './checks-spend.ts';
import { checkPolicyLint } from './checks-policy.ts';
import { checkBudgetNames } from './checks-budgets.ts';
import { checkAnomalyNames } from './checks-anomaly.ts';
import { checkSecretSources } from './checks-sources.ts';
import { checkSecretCommands } from './checks-commands.ts';
import { checkShellProxy } from './checks-shell-proxy.ts';
import { CLIENTS } from './clients.ts';
import type { CheckResult, Context } from './context.ts';
import { excludedByNoProxy, LOOPBACK_NO_PROXY } from '../../no-proxy.ts';

export async function runChecks(ctx: Context): Promise<CheckResult[]> {
  const paths = keywayPaths(ctx.config);
  const caPath = join(paths.certsDir, 'ca.pem');
  const keyPath = join(paths.certsDir, 'ca-key.pem');
  const bundlePath = join(paths.certsDir, 'bundle.pem');
  const add = (r: CheckResult) => {
    ctx.results.push(r);
    return r;
  };

  const ca = await checkCaCert(caPath, keyPath);
  add(ca.result);
  add(await checkCaKey(keyPath, ca.cert));
  add(await checkBundle(bundlePath, ca.cert));
  const proxyOk = add(await checkProxy(ctx)).status === 'ok';
  add(await checkAdmin(ctx));
  add(await checkStore(ctx));
  for (const r of await checkModelPrices(ctx)) add(r);
  add(await checkPolicyLint(ctx));
  for (const r of await checkRefusedCredentials(ctx)) add(r);
  const budgets = await checkBudgetNames(ctx);
  if (budgets) add(budgets);
  const anomalyNames = await checkAnomalyNames(ctx);
  if (anomalyNames) add(anomalyNames);
  add(await checkShellProxy(ctx));
  for (const r of await checkIdentityIssuers(ctx)) add(r);
  for (const r of await checkSecretSources(ctx)) add(r);
  for (const r of await checkSecretCommands(ctx)) add(r);
  const egress = await checkEgressProxy(ctx);
  if (egress) add(egress);
  add(await checkCheckpointKey(ctx));
  add(checkSecretsReach(ctx));

  const throughName = ctx.target.selfCheck ? `keyway answers through the proxy (${SELF_CHECK_HOST})` : `keyway intercepts ${ctx.target.host}`;
  let blocked: string | undefined;
  if (ca.cert === undefined) blocked = 'needs a working certs/ca.pem';
  else if (!proxyOk) blocked = 'needs the proxy to answer';
  if (blocked !== undefined || ca.pem === undefined) {
    add({ check: throughName, status: 'skip', detail: blocked ?? 'needs certs/ca.pem' });
  } else {
    blocked = add(await checkThroughProxy(ctx, ca.pem, throughName)).status === 'ok' ? undefined : "keyway's own check through the proxy failed";
  }

  // keyway env's NO_PROXY sends loopback straight there: clients would pass, and keyway see nothing.
  if (!ctx.target.selfCheck && excludedByNoProxy(ctx.target.host, LOOPBACK_NO_PROXY)) {
    add({
      check: `clients send ${ctx.target.host} through keyway`,
      status: 'fail',
      detail: `${ctx.target.host} is in NO_PROXY as keyway env sets it (${LOOPBACK_NO_PROXY}): clients go straight there, nothing injected, nothing audited`,
      fix: 'give the API a name that maps to loopback (proxy.hosts, allow_networks; docs/local-api.md, "Try it on a local API") and pass --url with that name',
    });
    blocked ??= `--url's host is in NO_PROXY`;
  }

  let env: Record<string, string> | undefined;
  if (blocked === undefined) {
    try {
      const vars = await variablesFor(ctx.args, quietIO(ctx.io), formatListen(ctx.proxy));
      env = { PATH: ctx.io.env['PATH'] ?? '/usr/bin:/bin', HOME: ctx.io.env['HOME'] ?? '/tmp', ...vars.proxy, ...vars.placeholders };
    } catch (err) {
      blocked = `the variables of keyway env cannot be made: ${(err as Error).message}`;
    }
  }
  const seenAuditIds = new Set<string>();
  for (const client of CLIENTS) {
    if (blocked !== undefined || env === undefined) {
      add({ check: client.name, status: 'skip', detail: `not run: ${blocked ?? 'no environment'}` });
      continue;
    }
    add(await checkClient(ctx, client, env, seenAuditIds));
  }
  add(await checkUserNode(ctx));
  return ctx.results;
}

/** variablesFor reports store problems on stderr; doctor's own lines say what matters. */
function quietIO(io: CommandIO): CommandIO {
  return { ...io, err: () => undefined };
}
