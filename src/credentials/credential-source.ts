import { ProxyError } from '../errors/index.ts';
import type { Grant } from './grant.ts';
import type { Credential, SecretMaterial } from './material.ts';
import type { IssuedCredential } from './issuing/issued-credential.ts';
import type { MintedTokens } from './issuing/minted-tokens.ts';
import type { MintedToken } from './issuing/minter.ts';
import { KINDS, type IssueContext, type Issuer, type MaterialIssuer, type MintWith, type OnBehalf, type RenewContext, usableMaterial } from './types/index.ts';
import type { TokenManager } from './issuing/oauth-tokens.ts';
import type { CommandSecrets } from './providers/cmd-secrets.ts';
import type { SourceSecrets } from './sources/source-secrets.ts';
import { staticCredential } from './providers/static.ts';
import { commandMaterial } from './providers/cmd-material.ts';
import { setSecretCommand } from './grant-display.ts';
import { chainOf } from '../delegation/chain.ts';

/** For an agent: no identity token unless its connection proved one; a delegated agent's chain. */
export const onBehalfOfAgent = (agent: { id: string; identityToken?: string | undefined; parents?: readonly string[] | undefined }): OnBehalf => ({
  agent: agent.id,
  identityToken: agent.identityToken,
  chain: chainOf(agent),
});

/**
 * Whether a 401 from the upstream is held back for a fresh credential and one replay: one an OAuth
 * provider, a minter or a per-request issuer gives again, or a secret a command prints or a source
 * holds that goes on the request as it is (fetched again: MaterialIssuer.refetchReplays). A signing
 * grant's replay would need a new signature over the body: not replayed.
 */
export function replaysAfter401(grant: Grant): boolean {
  const issuer = KINDS[grant.type].issuer;
  return issuer.by === 'material' ? issuer.refetchReplays && fetchesSecret(grant) : true;
}

/** Its secret is got on use, not held: printed by a command, or fetched from a secret source. */
export const fetchesSecret = (grant: Grant): boolean => grant.secretCommand !== undefined || grant.secretFrom !== undefined;

/**
 * A minted grant's token (github_app, google_service_account, dpop), got with `mint` from its kind's
 * minter and what it mints for: the key only ever signs the assertion or app JWT; requests carry the token.
 */
export function mintedToken(grant: Grant, material: SecretMaterial | undefined, mint: MintWith): Promise<MintedToken> {
  const issuer = KINDS[grant.type].issuer;
  const minting = issuer.by === 'minted' && material !== undefined && usableMaterial(grant.type, material) ? issuer.token(grant, material, mint) : undefined;
  if (minting === undefined) throw noSecret(grant);
  return minting;
}

/** A fresh minted token in the same form as the refused one: Bearer on the API, Basic x-access-token on git. */
function inTheFormOf(used: Credential, token: string): Credential {
  if (used.kind === 'basic') return { kind: 'basic', username: 'x-access-token', password: token };
  return { kind: 'token', value: token };
}

/** 401 grant_no_secret, with where this grant's secret is set: the store (the CLI) or the config file. */
export function noSecret(grant: Grant): ProxyError {
  return new ProxyError('grant_no_secret', `grant "${grant.id}" has no usable secret set`, {
    grant: grant.id,
    hint: grant.source === 'config' ? `set grants.${grant.id}.secret in the config` : setSecretCommand(grant.id, grant.type),
  });
}

/**
 * A grant's client certificate that cannot be presented is refused here, before anything connects:
 * one that could not be read (a wrong passphrase, a key of another certificate) or is past notAfter.
 * An mtls grant whose secret was never set is grant_no_secret (staticCredential), not this.
 */
function checkClientCertificate(grant: Grant): void {
  const cert = grant.clientCertificate;
  if (cert === undefined) return;
  const hint = `set a new one with keyway secrets set ${grant.id} --client-certificate FILE --client-key FILE`;
  if (!cert.ok)
    throw new ProxyError('upstream_unreachable', `grant "${grant.id}"'s client certificate cannot be used: ${cert.problem}`, { grant: grant.id, hint });
  if (cert.notAfter <= Date.now()) {
    throw new ProxyError(
      'upstream_unreachable',
      `grant "${grant.id}"'s client certificate expired at ${new Date(cert.notAfter).toISOString()}; not connecting`,
      {
        grant: grant.id,
        hint,
      },
    );
  }
}

/**
 * An active OAuth grant with no material, no token to send and none to refresh with: a secret never
 * set, not a refresh token the provider refused (a refresh would fail and mark it needs_reconnect).
 * The token state is read only for a grant with no material.
 */
export function oauthSecretNeverSet(grant: Grant, tokens: Pick<TokenManager, 'state' | 'hasOwnClient'>): boolean {
  if (grant.material !== undefined || grant.status !== 'active') return false;
  // A client_credentials grant may take its client from its provider (providers.X.client_id and
  // client_secret): it needs no secret of its own.
  if (grant.type === 'client_credentials' && tokens.hasOwnClient(grant)) return false;
  const state = tokens.state(grant);
  return (state.status ?? 'active') === 'active' && !state.accessToken && !state.refreshToken;
}

const NOBODY: OnBehalf = { agent: '', identityToken: undefined };

/**
 * Where the request path gets a grant's credential: it checks what every type shares (a client
 * certificate that can be presented, an active grant, a secret set and not past its own expiry) and
 * asks the type's issuer (types/issuer.ts) for the rest, handing it the process's tools: the OAuth
 * token manager, the minted tokens, the Renewer, the secret commands and sources.
 */
export class CredentialSource {
  readonly #tokens: TokenManager;
  readonly #renewing: RenewContext | undefined;
  readonly #commands: CommandSecrets | undefined;
  readonly #minted: MintedTokens | undefined;
  readonly #sources: SourceSecrets | undefined;
  readonly #issuing: IssueContext | undefined;

  constructor(
    tokens: TokenManager,
    renewing?: RenewContext,
    commands?: CommandSecrets,
    minted?: MintedTokens,
    sources?: SourceSecrets,
    issuing?: IssueContext,
  ) {
    this.#issuing = issuing;
    this.#tokens = tokens;
    this.#renewing = renewing;
    this.#commands = commands;
    this.#minted = minted;
    this.#sources = sources;
  }

  /**
   * `host`: the request's (a github_app's token is Bearer on its API host, Basic x-access-token
   * elsewhere). A static secret held in memory comes back as it is, not in a promise: most requests
   * carry one, and a promise costs each of them an allocation and a turn of the microtask queue.
   */
  get(grant: Grant, host?: string, forWhom?: OnBehalf): IssuedCredential | Promise<IssuedCredential> {
    checkClientCertificate(grant);
    const issuer = KINDS[grant.type].issuer;
    if (issuer.by === 'material' && grant.status === 'active' && !fetchesSecret(grant)) return this.#fromMaterial(grant, issuer, grant.material);
    return this.#issue(grant, issuer, host, forWhom);
  }

  async #issue(grant: Grant, issuer: Issuer, host: string | undefined, forWhom: OnBehalf | undefined): Promise<IssuedCredential> {
    // An OAuth grant's status is its tokens' (the token manager refuses one that needs reconnecting).
    if (issuer.by === 'oauth') {
      if (oauthSecretNeverSet(grant, this.#tokens)) throw noSecret(grant);
      const { token, refreshed } = await this.#tokens.accessToken(grant);
      return { credential: { kind: 'token', value: token }, refreshed };
    }
    if (grant.status !== 'active') {
      throw new ProxyError('grant_needs_reconnect', `grant "${grant.id}" is ${grant.status}`, {
        grant: grant.id,
        hint: `keyway connect ${grant.provider ?? grant.id} --grant ${grant.id}, or keyway secrets set ${grant.id} --stdin`,
      });
    }
    const material = await this.#material(grant);
    switch (issuer.by) {
      case 'request':
        return issuer.issue(grant, material, forWhom ?? NOBODY, this.#issueContext(grant));
      case 'minted': {
        const minted = await mintedToken(grant, material, (minter, spec) => this.#mintedTokens(grant).token(grant, minter, spec));
        return { credential: issuer.credential(grant, minted.token, host, minted.boundKey), refreshed: minted.refreshed };
      }
      case 'material':
        return this.#fromMaterial(grant, issuer, material);
    }
  }

  /** A static grant's credential from its material (held, or printed by its command); one renewed from it (a role's) is fetched. */
  #fromMaterial(grant: Grant, issuer: MaterialIssuer, material: SecretMaterial | undefined): IssuedCredential | Promise<IssuedCredential> {
    const credential = staticCredential(grant.type, material);
    if (!credential) throw noSecret(grant);
    if (grant.secretExpiresAt !== undefined && grant.secretExpiresAt <= Date.now()) {
      throw new ProxyError('token_expired', `grant "${grant.id}"'s token expired at ${new Date(grant.secretExpiresAt).toISOString()} (its exp)`, {
        grant: grant.id,
        hint: `set a new one with keyway secrets set ${grant.id}`,
      });
    }
    // The stored key only ever signs the renewal (an AssumeRole call); requests carry what it renews.
    if (issuer.renews?.renewsFor(grant)) {
      if (!this.#renewing) throw new ProxyError('internal_error', `grant "${grant.id}" renews its credential from its key, and this process cannot`);
      return issuer.renews.get(grant, credential, this.#renewing);
    }
    return { credential, refreshed: false };
  }

  /**
   * After an upstream 401 on `used`: a refreshed credential for one replay (replaysAfter401 grants
   * only), or `used` again, floored, within the grant's renew_floor (OAuth, minted and issued kinds).
   */
  async afterRejection(grant: Grant, used: Credential, forWhom?: OnBehalf): Promise<IssuedCredential> {
    const issuer = KINDS[grant.type].issuer;
    switch (issuer.by) {
      case 'request':
        return issuer.afterRejection(grant, await this.#material(grant), forWhom ?? NOBODY, used, this.#issueContext(grant));
      case 'minted': {
        const rejected = used.kind === 'token' ? used.value : used.kind === 'basic' ? used.password : used.kind === 'key' ? (used.token ?? '') : '';
        const material = await this.#material(grant);
        const minted = await mintedToken(grant, material, (minter, spec) => this.#mintedTokens(grant).afterRejection(grant, minter, spec, rejected));
        // A token bound to a key: the new one with the key it is bound to; else the refused one's form.
        const credential = used.kind === 'key' ? issuer.credential(grant, minted.token, undefined, minted.boundKey) : inTheFormOf(used, minted.token);
        return { credential, refreshed: minted.refreshed, floored: minted.floored };
      }
      case 'material':
        return this.#fetchedAgain(grant, used);
      case 'oauth': {
        const rejected = used.kind === 'token' ? used.value : '';
        const { token, refreshed, floored } = await this.#tokens.afterRejection(grant, rejected);
        return { credential: { kind: 'token', value: token }, refreshed, floored };
      }
    }
  }

  /** A secret a command prints or a source holds, got again after `used` was refused; one held has none newer: `used`, floored. */
  async #fetchedAgain(grant: Grant, used: Credential): Promise<IssuedCredential> {
    if (!fetchesSecret(grant)) return { credential: used, refreshed: false, floored: true };
    // The command runs again, or the source is asked again; `isRejected` knows the value refused.
    const rejected = JSON.stringify(used);
    const isRejected = (text: string) => JSON.stringify(staticCredential(grant.type, commandMaterial(grant, text))) === rejected;
    const command = grant.secretCommand;
    const item = grant.secretFrom;
    const material =
      command !== undefined
        ? await this.#fromCommand(grant, (c) => c.afterRejection(grant.id, command, isRejected))
        : await this.#fromSource(grant, (s) => s.afterRejection(grant.id, item!, isRejected));
    const credential = staticCredential(grant.type, material);
    if (!credential) throw noSecret(grant);
    return { credential, refreshed: true };
  }

  #mintedTokens(grant: Grant): MintedTokens {
    if (!this.#minted) throw new ProxyError('internal_error', `grant "${grant.id}" mints its tokens, and this process cannot`);
    return this.#minted;
  }

  #issueContext(grant: Grant): IssueContext {
    if (this.#issuing === undefined) throw new ProxyError('internal_error', `grant "${grant.id}" issues its tokens per request, and this process cannot`);
    return this.#issuing;
  }

  /** A grant's material: held, printed by its command, or fetched from its secret source. */
  #material(grant: Grant): SecretMaterial | undefined | Promise<SecretMaterial> {
    const command = grant.secretCommand;
    if (command !== undefined) return this.#fromCommand(grant, (c) => c.get(grant.id, command));
    const item = grant.secretFrom;
    if (item !== undefined) return this.#fromSource(grant, (s) => s.get(grant.id, item));
    return grant.material;
  }

  /** The material a grant's secret source holds (single flight, cached, stale within max_stale: sources/source-secrets.ts). */
  async #fromSource(grant: Grant, fetch: (sources: SourceSecrets) => Promise<string>): Promise<SecretMaterial> {
    if (!this.#sources) throw new ProxyError('internal_error', `grant "${grant.id}" gets its secret from a secret source, and this process cannot read it`);
    return commandMaterial(grant, await fetch(this.#sources));
  }

  /** The material a grant's secret command printed (single flight, cached: cmd-secrets.ts). */
  async #fromCommand(grant: Grant, run: (commands: CommandSecrets) => Promise<string>): Promise<SecretMaterial> {
    if (!this.#commands) throw new ProxyError('internal_error', `grant "${grant.id}" gets its secret from a command, and this process cannot run it`);
    return commandMaterial(grant, await run(this.#commands));
  }
}
