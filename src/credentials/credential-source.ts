import { ProxyError } from '../errors/index.ts';
import type { Grant } from './grant.ts';
import type { Credential, SecretMaterial } from './material.ts';
import type { IssuedCredential } from './issuing/issued-credential.ts';
import type { AwsRoleCredentials } from './types/aws_sigv4/role.ts';
import type { MintedTokens } from './issuing/minted-tokens.ts';
import type { MintedToken } from './issuing/minter.ts';
import { KINDS, type IssueContext, type MintWith, type OnBehalf, usableMaterial } from './types/index.ts';
import type { TokenManager } from './issuing/oauth-tokens.ts';
import type { CommandSecrets } from './providers/cmd-secrets.ts';
import type { SourceSecrets } from './sources/source-secrets.ts';
import { staticCredential } from './providers/static.ts';
import { commandMaterial } from './providers/cmd-material.ts';
import { setSecretCommand } from './grant-display.ts';
import { awsSigningOfGrant } from './types/aws_sigv4/kind.ts';

/** For an agent: no identity token unless its connection proved one. */
export const onBehalfOfAgent = (agent: { id: string; identityToken?: string | undefined }): OnBehalf => ({
  agent: agent.id,
  identityToken: agent.identityToken,
});

/** Its tokens come from an OAuth provider (GrantKind.oauth). */
export const isOAuthGrant = (grant: Grant): boolean => KINDS[grant.type].oauth !== undefined;

/**
 * Whether a 401 from the upstream is held back for a fresh credential and one replay: an OAuth
 * grant (a refresh), or a grant whose secret a command prints and keyway injects (the command runs
 * again). A signing grant's replay would need a new signature over the body: not replayed.
 */
export const replaysAfter401 = (grant: Grant): boolean =>
  isOAuthGrant(grant) ||
  KINDS[grant.type].mints !== undefined ||
  KINDS[grant.type].issues !== undefined ||
  (fetchesSecret(grant) && KINDS[grant.type].sendsSecret === true);

/** Its secret is got on use, not held: printed by a command, or fetched from a secret source. */
export const fetchesSecret = (grant: Grant): boolean => grant.secretCommand !== undefined || grant.secretFrom !== undefined;

/**
 * A minted grant's token (github_app, google_service_account), got with `mint` from its kind's
 * minter and what it mints for: the key only ever signs the assertion or app JWT; requests carry the token.
 */
export function mintedToken(grant: Grant, material: SecretMaterial | undefined, mint: MintWith): Promise<MintedToken> {
  const minting = material !== undefined && usableMaterial(grant.type, material) ? KINDS[grant.type].mints?.token(grant, material, mint) : undefined;
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

/**
 * Where the request path gets a grant's credential: static secrets from memory, OAuth tokens from
 * the TokenManager, an aws_sigv4 grant's role credentials from AwsRoleCredentials.
 */
export class CredentialSource {
  readonly #tokens: TokenManager;
  readonly #roles: AwsRoleCredentials | undefined;
  readonly #commands: CommandSecrets | undefined;
  readonly #minted: MintedTokens | undefined;
  readonly #sources: SourceSecrets | undefined;
  readonly #issuing: IssueContext | undefined;

  constructor(
    tokens: TokenManager,
    roles?: AwsRoleCredentials,
    commands?: CommandSecrets,
    minted?: MintedTokens,
    sources?: SourceSecrets,
    issuing?: IssueContext,
  ) {
    this.#issuing = issuing;
    this.#tokens = tokens;
    this.#roles = roles;
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
    const kind = KINDS[grant.type];
    if (isOAuthGrant(grant) || grant.status !== 'active' || fetchesSecret(grant) || kind.mints !== undefined || kind.issues !== undefined)
      return this.#issue(grant, host, forWhom);
    return this.#fromMaterial(grant, grant.material);
  }

  async #issue(grant: Grant, host: string | undefined, forWhom: OnBehalf | undefined): Promise<IssuedCredential> {
    if (isOAuthGrant(grant)) {
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
    const issues = KINDS[grant.type].issues;
    if (issues !== undefined) return issues.issue(grant, material, forWhom ?? { agent: '', identityToken: undefined }, this.#issueContext(grant));
    const mints = KINDS[grant.type].mints;
    if (mints !== undefined) {
      if (!this.#minted) throw new ProxyError('internal_error', `grant "${grant.id}" mints its tokens, and this process cannot`);
      const minted = await mintedToken(grant, material, (minter, spec) => this.#minted!.token(grant, minter, spec));
      return { credential: mints.credential(grant, minted.token, host, minted.boundKey), refreshed: minted.refreshed };
    }
    return this.#fromMaterial(grant, material);
  }

  /** A static grant's credential from its material (held, or printed by its command); a role's is fetched. */
  #fromMaterial(grant: Grant, material: SecretMaterial | undefined): IssuedCredential | Promise<IssuedCredential> {
    const credential = staticCredential(grant.type, material);
    if (!credential) throw noSecret(grant);
    if (grant.secretExpiresAt !== undefined && grant.secretExpiresAt <= Date.now()) {
      throw new ProxyError('token_expired', `grant "${grant.id}"'s token expired at ${new Date(grant.secretExpiresAt).toISOString()} (its exp)`, {
        grant: grant.id,
        hint: `set a new one with keyway secrets set ${grant.id}`,
      });
    }
    const role = awsSigningOfGrant(grant)?.assumeRole;
    if (role !== undefined && credential.kind === 'aws') {
      // The stored key only ever signs the AssumeRole call; requests are signed as the role.
      if (!this.#roles) throw new ProxyError('internal_error', `grant "${grant.id}" assumes a role, and this process cannot`);
      return this.#roles.get(grant, role, credential);
    }
    return { credential, refreshed: false };
  }

  /**
   * After an upstream 401 on `used`: a refreshed credential for one replay (replaysAfter401 grants
   * only), or `used` again, floored, within the grant's renew_floor (OAuth, minted and issued kinds).
   */
  async afterRejection(grant: Grant, used: Credential, forWhom?: OnBehalf): Promise<IssuedCredential> {
    const issues = KINDS[grant.type].issues;
    if (issues !== undefined)
      return issues.afterRejection(grant, await this.#material(grant), forWhom ?? { agent: '', identityToken: undefined }, used, this.#issueContext(grant));
    if (KINDS[grant.type].mints !== undefined) {
      if (!this.#minted) throw new ProxyError('internal_error', `grant "${grant.id}" mints its tokens, and this process cannot`);
      const rejected = used.kind === 'token' ? used.value : used.kind === 'basic' ? used.password : used.kind === 'key' ? (used.token ?? '') : '';
      const material = await this.#material(grant);
      const minted = await mintedToken(grant, material, (minter, spec) => this.#minted!.afterRejection(grant, minter, spec, rejected));
      // A token bound to a key: the new one with the key it is bound to; else the refused one's form.
      const mints = KINDS[grant.type].mints!;
      const credential = used.kind === 'key' ? mints.credential(grant, minted.token, undefined, minted.boundKey) : inTheFormOf(used, minted.token);
      return { credential, refreshed: minted.refreshed, floored: minted.floored };
    }
    if (fetchesSecret(grant)) {
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
    const rejected = used.kind === 'token' ? used.value : '';
    const { token, refreshed, floored } = await this.#tokens.afterRejection(grant, rejected);
    return { credential: { kind: 'token', value: token }, refreshed, floored };
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
