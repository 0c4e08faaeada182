// doctor's check of each grant's secret source (secret_sources:): the item is fetched as the proxy
// fetches it and read as the grant's kind of secret, and the line says only whether it worked (the
// store's error when not), never the value. The source's own credentials come from this shell, or
// from the running keyway when this shell lacks them (cli/running-secrets.ts).
import { describeSourced } from '../../../config/secret-sources.ts';
import { commandMaterial } from '../../../credentials/providers/cmd-material.ts';
import { SourceSecrets } from '../../../credentials/sources/source-secrets.ts';
import type { CheckResult, Context } from './context.ts';

const FIX = 'check the source and its permissions (docs/credentials.md, "Secrets kept in a secret store you already run")';

export async function checkSecretSources(ctx: Context): Promise<CheckResult[]> {
  const sourced = Object.entries(ctx.config.grants).flatMap(([id, g]) => (g.secret?.kind === 'source' ? [{ id, type: g.type, item: g.secret }] : []));
  if (sourced.length === 0) return [];
  const sources = new SourceSecrets({ config: () => ctx.config, env: ctx.io.env });
  return Promise.all(
    sourced.map(async ({ id, type, item }): Promise<CheckResult> => {
      const check = `grant ${id}'s secret at ${describeSourced(item)}`;
      try {
        commandMaterial({ id, type, secretCommand: undefined, secretFrom: item }, await sources.get(id, item));
        return { check, status: 'ok', detail: `read as a ${type} secret (the value is not shown)` };
      } catch (err) {
        return { check, status: 'fail', detail: (err as Error).message, fix: FIX };
      }
    }),
  );
}
