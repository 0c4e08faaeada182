// onepassword: an item's field read from a 1Password Connect server over its documented REST API
// (GET /v1/vaults, /v1/vaults/ID/items, /v1/vaults/ID/items/ID), with the server's access token
// (the config's reference, else OP_CONNECT_TOKEN). The item is named as 1Password's own references
// are, `op://VAULT/ITEM/FIELD` (or `op://VAULT/ITEM/SECTION/FIELD`), or `VAULT/ITEM` with `key: FIELD`;
// vaults and items by title or id, fields by label or id. With no field named, the item's password.
import { request } from 'undici';
import type { SecretSourceConfig } from '../../config/secret-sources.ts';
import { ENDPOINT_RULE, endpointAllowed, type SourcedSecret } from '../../config/sourced-secret.ts';
import { readSecretRef } from '../../config/secret-ref.ts';
import { SourceFailure, type SourceReader } from './reader.ts';

type Config = Extract<SecretSourceConfig, { type: 'onepassword' }>;

interface Field {
  id?: string;
  label?: string;
  value?: string;
  purpose?: string;
  section?: { id?: string };
}

interface Reference {
  vault: string;
  item: string;
  section: string | undefined;
  field: string | undefined;
}

/** The parts of an item's name; a field named twice (in op:// and as key) is a mistake. */
export function parseReference(id: string, key: string | undefined): Reference {
  const parts = id.replace(/^op:\/\//, '').split('/');
  if (parts.length < 2 || parts.length > 4 || parts.some((p) => p === '')) {
    throw new SourceFailure('expected an item named op://VAULT/ITEM/FIELD, op://VAULT/ITEM/SECTION/FIELD or VAULT/ITEM');
  }
  const [vault, item, third, fourth] = parts as [string, string, string?, string?];
  const field = fourth ?? third;
  if (field !== undefined && key !== undefined) throw new SourceFailure('the field is named twice (in the reference and as key): name it once');
  return { vault, item, section: fourth === undefined ? undefined : third, field: field ?? key };
}

export function onePasswordReader(config: Config, env: NodeJS.ProcessEnv, baseDir: string): SourceReader {
  const host = (config.connect_host ?? env['OP_CONNECT_HOST'] ?? '').replace(/\/+$/, '');
  const call = async <T>(path: string, signal: AbortSignal): Promise<T> => {
    if (host === '') throw new SourceFailure("no Connect server: set the source's connect_host or OP_CONNECT_HOST");
    // OP_CONNECT_HOST is held to the config's rule: the token and the secret would cross the network in clear.
    if (!endpointAllowed(host)) throw new SourceFailure(`OP_CONNECT_HOST: ${ENDPOINT_RULE}`);
    const token = config.token ? readSecretRef(config.token, env, baseDir) : env['OP_CONNECT_TOKEN'];
    if (!token) throw new SourceFailure("no Connect token: set the source's token (env:NAME or file:PATH) or OP_CONNECT_TOKEN");
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${host}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal });
    } catch (err) {
      const e = err as { name?: string; code?: string };
      throw new SourceFailure(
        e.name === 'AbortError' ? "no answer within the source's timeout" : `the Connect server cannot be reached (${e.code ?? e.name ?? 'error'})`,
      );
    }
    const text = await answer.body.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (answer.statusCode !== 200) {
      const message = typeof (parsed as { message?: unknown })?.message === 'string' ? `: ${(parsed as { message: string }).message.slice(0, 200)}` : '';
      throw new SourceFailure(`1Password Connect answered ${answer.statusCode}${message}`);
    }
    return parsed as T;
  };
  const byTitle = (title: string) => `filter=${encodeURIComponent(`title eq "${title.replace(/"/g, '\\"')}"`)}`;
  const idOf = async (path: string, title: string, what: string, signal: AbortSignal): Promise<string> => {
    const found = await call<Array<{ id: string }>>(`${path}?${byTitle(title)}`, signal);
    if (Array.isArray(found) && found.length === 1) return found[0]!.id;
    if (Array.isArray(found) && found.length > 1) throw new SourceFailure(`${found.length} ${what}s are titled "${title}": name it by id`);
    // Not a title: an id, as 1Password's references allow.
    if (/^[a-z0-9]{26}$/.test(title)) return title;
    throw new SourceFailure(`no ${what} "${title}"`);
  };

  return {
    async fetch(item: SourcedSecret, signal: AbortSignal): Promise<string> {
      const ref = parseReference(item.id, item.key);
      const vaultId = await idOf('/v1/vaults', ref.vault, 'vault', signal);
      const itemId = await idOf(`/v1/vaults/${vaultId}/items`, ref.item, 'item', signal);
      const full = await call<{ fields?: Field[]; sections?: Array<{ id?: string; label?: string }> }>(`/v1/vaults/${vaultId}/items/${itemId}`, signal);
      const fields = full.fields ?? [];
      const sectionId = ref.section === undefined ? undefined : (full.sections ?? []).find((s) => s.label === ref.section || s.id === ref.section)?.id;
      if (ref.section !== undefined && sectionId === undefined) throw new SourceFailure(`the item has no section "${ref.section}"`);
      const inSection = (f: Field) => sectionId === undefined || f.section?.id === sectionId;
      const field =
        ref.field === undefined
          ? fields.find((f) => f.purpose === 'PASSWORD')
          : (fields.find((f) => inSection(f) && f.label === ref.field) ?? fields.find((f) => inSection(f) && f.id === ref.field));
      if (field === undefined) {
        const labels = fields.map((f) => f.label ?? f.id).slice(0, 20);
        throw new SourceFailure(
          `the item has no field ${ref.field === undefined ? 'that is its password' : `"${ref.field}"`} (its fields: ${labels.join(', ') || 'none'})`,
        );
      }
      if (!field.value) throw new SourceFailure(`the field "${field.label ?? field.id}" is empty`);
      return field.value;
    },
  };
}
