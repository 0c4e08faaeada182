import { isOAuthGrant } from '../../credentials/credential-source.ts';
import { grantRecordId, type StoredGrant } from '../../credentials/grant-record.ts';
import { buildGrants } from '../../credentials/grants.ts';
import { oauthStateId, type OAuthState } from '../../credentials/oauth-state.ts';
import { findProvider, tokenEndpointFor } from '../../credentials/providers/provider-registry.ts';
import { KeywayError } from '../../errors/index.ts';
import { revokeToken } from '../../oauth/revoke.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { endpointDispatcher, servicesFor } from '../context.ts';
import { printJson, usageError } from '../io.ts';

export const revoke: Command = {
  name: 'revoke',
  usage: `keyway revoke ID [--json]

Revokes grant ID's refresh and access tokens at the provider where it has a revocation endpoint
(RFC 7009), then marks the grant revoked either way: it stops injecting at once, in every running
proxy. \`keyway connect\` or \`keyway secrets set\` makes it active again.`,
  async run(argv, io) {
    const args = parse(argv);
    const [id] = args.positionals;
    if (!id) throw usageError('usage: keyway revoke ID');
    const services = await servicesFor(args, io);
    const grant = buildGrants(services.config, services.store, io.env).get(id);
    if (!grant) throw new KeywayError('not_found', `no grant "${id}"`);

    let atProvider = 'no revocation endpoint: revoked in keyway only';
    if (isOAuthGrant(grant)) {
      const provider = grant.provider === undefined ? undefined : findProvider(services.config, grant.provider, io.env);
      const live = services.store.get<OAuthState>(oauthStateId(id));
      const material = grant.material && typeof grant.material === 'object' && !('username' in grant.material) ? grant.material : undefined;
      const refreshToken = live?.refreshToken ?? (material && 'refreshToken' in material ? material.refreshToken : undefined);
      const accessToken = live?.accessToken ?? material?.accessToken;
      if (provider?.revokeUrl) {
        const dispatcher = endpointDispatcher(services.config);
        try {
          const endpoint = tokenEndpointFor(provider, grant);
          const results = [];
          // Revoking the refresh token ends the whole grant at most providers; the access token too, for those that don't.
          if (refreshToken) results.push(await revokeToken(provider.revokeUrl, endpoint, refreshToken, 'refresh_token', dispatcher));
          if (accessToken) results.push(await revokeToken(provider.revokeUrl, endpoint, accessToken, 'access_token', dispatcher));
          const failed = results.find((r) => !r.ok);
          atProvider = failed ? `the provider refused: ${failed.detail}; revoked in keyway anyway` : 'revoked at the provider';
        } finally {
          await dispatcher.close();
        }
      }
    }
    await services.store.update((draft) => {
      const stored = draft.get<StoredGrant>(grantRecordId(id));
      if (stored) draft.set(grantRecordId(id), { ...stored, status: 'revoked', updated_at: new Date().toISOString() } satisfies StoredGrant);
      // Config grants have no stored record: the live state carries the status for them.
      draft.set(oauthStateId(id), { status: 'revoked' } satisfies OAuthState);
    });
    if (args.json) printJson(io, { grant: id, status: 'revoked', provider: atProvider });
    else io.out(`grant ${id} revoked (${atProvider})`);
    return 0;
  },
};
