// gcp_secret_manager: a secret version read with Secret Manager's documented REST API
// (GET /v1/projects/P/secrets/S/versions/V:access), authorised as a service account: keyway signs the
// JWT assertion with the account's key (the key file, by reference or GOOGLE_APPLICATION_CREDENTIALS)
// and exchanges it at the key's token_uri, as google_service_account grants do, keeping the access
// token until 5 minutes before it expires. The item: SECRET (version latest, or `version`), or
// projects/P/secrets/S[/versions/V]. Needs roles/secretmanager.secretAccessor on the secret.
import { request } from 'undici';
import type { SecretSourceConfig, SourcedSecret } from '../../config/secret-sources.ts';
import { gcpServiceAccount } from './gcp-auth.ts';
import { pickField, SourceFailure, type SourceReader } from './reader.ts';

type Config = Extract<SecretSourceConfig, { type: 'gcp_secret_manager' }>;

const DEFAULT_ENDPOINT = 'https://secretmanager.googleapis.com';

/** The version's resource name for an item, in the source's project. */
export function versionName(item: SourcedSecret, project: string | undefined): string {
  const full = /^projects\/[^/]+\/secrets\/[^/]+(\/versions\/[^/]+)?$/.exec(item.id);
  if (full) return full[1] ? item.id : `${item.id}/versions/${item.version ?? 'latest'}`;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(item.id)) throw new SourceFailure('expected the item as SECRET or projects/PROJECT/secrets/SECRET[/versions/V]');
  if (project === undefined) throw new SourceFailure("no project: set the source's project, or use a key file that names its project_id");
  return `projects/${project}/secrets/${item.id}/versions/${item.version ?? 'latest'}`;
}

export function gcpSecretManagerReader(config: Config, env: NodeJS.ProcessEnv, baseDir: string): SourceReader {
  const endpoint = (config.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const auth = gcpServiceAccount(config.credentials, env, baseDir, config.timeout);

  return {
    async fetch(item: SourcedSecret, signal: AbortSignal): Promise<string> {
      const name = versionName(item, config.project ?? (await auth.project()));
      let answer: Awaited<ReturnType<typeof request>>;
      try {
        answer = await request(`${endpoint}/v1/${name}:access`, {
          headers: { authorization: `Bearer ${await auth.token()}`, accept: 'application/json' },
          signal,
        });
      } catch (err) {
        if (err instanceof SourceFailure) throw err;
        const e = err as { name?: string; code?: string };
        throw new SourceFailure(
          e.name === 'AbortError' ? "no answer within the source's timeout" : `Secret Manager cannot be reached (${e.code ?? e.name ?? 'error'})`,
        );
      }
      const body = (await answer.body.json().catch(() => ({}))) as { payload?: { data?: string }; error?: { message?: string; status?: string } };
      if (answer.statusCode !== 200) {
        // A token refused: the next fetch mints another.
        if (answer.statusCode === 401) auth.forget();
        const why = body.error ? `: ${body.error.status ?? ''} ${(body.error.message ?? '').slice(0, 200)}`.trimEnd() : '';
        throw new SourceFailure(`Secret Manager answered ${answer.statusCode}${why}`);
      }
      const data = body.payload?.data;
      if (typeof data !== 'string') throw new SourceFailure('the version has no payload');
      return pickField(Buffer.from(data, 'base64').toString('utf8'), item.key);
    },
  };
}
