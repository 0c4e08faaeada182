import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { readSecretRef, type SecretRef } from '../../../config/secret-ref.ts';
import { ProxyError } from '../../../errors/index.ts';
import type { IssuedCredential } from '../../issuing/issued-credential.ts';
import { basicClientAuth, postToken, printableErrorCode } from '../../issuing/token-post.ts';
import { DEFAULT_RENEW_FLOOR_MS } from '../../grant-ref.ts';
import type { Grant } from '../../grant.ts';
import type { ClientCredentialsMaterial, SecretMaterial } from '../../material.ts';
import { clientOf } from '../client-material.ts';
import type { IssueContext, OnBehalf, RequestIssuer } from '../issuer.ts';
import { type Exchanged, ExchangeRefused, type ExchangeRequest, exchangeForm, readExchanged, subjectOf, TOKEN_TYPES } from './exchange.ts';
import { ExchangedTokens } from './exchanged-tokens.ts';
import { signActorToken } from './actor-token.ts';

// How a token_exchange grant issues each request's credential: the subject token (the agent's
// identity token, or the configured one) exchanged at the grant's token endpoint, with the grant's
// client as the one asking; the derived token cached per subject, audience and (for a delegated
// agent) chain until it is due.

export interface ExchangeSettings {
  readonly endpoint: string;
  readonly subject: 'identity' | SecretRef;
  readonly subjectTokenType: string;
  readonly audience: readonly string[];
  readonly resource: readonly string[];
  readonly scope: readonly string[];
  readonly requestedTokenType: string | undefined;
}

// A configured subject token, read at most once a minute: a file rewritten by its issuer is seen
// within that, and no request reads the disk.
const configuredSubjects = new LRUCache<string, string>({ max: 64, ttl: 60_000 });

/** One cache per grant and client, reaching the endpoint with the latest context it was given. */
interface GrantCache {
  readonly fingerprint: string;
  readonly tokens: ExchangedTokens;
  context: IssueContext;
}
const caches = new Map<string, GrantCache>();

function requiredClient(grant: Grant, material: SecretMaterial | undefined): ClientCredentialsMaterial {
  const client = clientOf(material);
  if (client === undefined) {
    throw new ProxyError('grant_no_secret', `grant "${grant.id}" has no client to exchange tokens with`, {
      grant: grant.id,
      hint: `keyway secrets set ${grant.id} with {"clientId","clientSecret"}`,
    });
  }
  return client;
}

function cacheFor(grant: Grant, settings: ExchangeSettings, client: ClientCredentialsMaterial, context: IssueContext): ExchangedTokens {
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([settings.endpoint, client.clientId, client.clientSecret]))
    .digest('hex');
  let cache = caches.get(grant.id);
  if (cache === undefined || cache.fingerprint !== fingerprint) {
    const made: GrantCache = {
      fingerprint,
      context,
      tokens: new ExchangedTokens((request) => post(grant.id, settings.endpoint, client, request, made.context)),
    };
    cache = made;
    caches.set(grant.id, cache);
  }
  cache.context = context;
  return cache.tokens;
}

/** One exchange: the form posted with the client's Basic credentials, the answer read; failures named, never a token. */
async function post(grantId: string, endpoint: string, client: ClientCredentialsMaterial, request: ExchangeRequest, context: IssueContext): Promise<Exchanged> {
  const where = new URL(endpoint).origin;
  const { status, text } = await postToken(
    {
      url: endpoint,
      headers: { authorization: basicClientAuth(client.clientId, client.clientSecret), accept: 'application/json' },
      body: { form: exchangeForm(await withActor(request, endpoint, client)) },
    },
    context,
    (failure) => {
      // A timeout is told as unreachable, with its code, as this type always told it.
      const what = failure.kind === 'oversize' ? failure.message : `${where} could not be reached (${failure.code})`;
      return new ProxyError('token_refresh_failed', `grant "${grantId}": the token endpoint ${what}`, { grant: grantId });
    },
  );
  try {
    return readExchanged(status, text);
  } catch (err) {
    if (!(err instanceof ExchangeRefused)) throw err;
    // The error code only: a description is the server's free text, and could quote what it was sent.
    const code = printableErrorCode(err.error);
    throw new ProxyError('token_refresh_failed', `grant "${grantId}": the token endpoint ${where} refused the exchange (${err.status} ${code})`, {
      grant: grantId,
      hint: code === 'invalid_grant' ? 'the subject token was refused: a fresh identity token, or check the exchange policy at the server' : undefined,
    });
  }
}

/** A delegated agent's exchange carries its chain as a signed actor token, made for this exchange alone; a root agent's is sent as it is. */
async function withActor(request: ExchangeRequest, endpoint: string, client: ClientCredentialsMaterial): Promise<ExchangeRequest> {
  if (request.actorChain === undefined) return request;
  const actorToken = await signActorToken({ chain: request.actorChain, clientId: client.clientId, clientSecret: client.clientSecret, endpoint });
  return { ...request, actorToken, actorTokenType: TOKEN_TYPES.jwt };
}

function subjectToken(grant: Grant, settings: ExchangeSettings, forWhom: OnBehalf, context: IssueContext): string {
  if (settings.subject === 'identity') {
    if (forWhom.identityToken === undefined) {
      throw new ProxyError(
        'grant_no_secret',
        `grant "${grant.id}" acts for the agent's identity, and agent "${forWhom.agent}" signed in without an identity token`,
        {
          grant: grant.id,
          hint: 'sign in with a token from an issuer under identities: (HTTPS_PROXY=http://jwt:TOKEN@…)',
        },
      );
    }
    return forWhom.identityToken;
  }
  const ref = settings.subject;
  const key = JSON.stringify(ref);
  let token = configuredSubjects.get(key);
  if (token === undefined) {
    try {
      token = readSecretRef(ref, context.env, context.home).trim();
    } catch {
      // Not the reader's words: they name a path or a variable, and the agent reads this.
      throw new ProxyError('grant_no_secret', `grant "${grant.id}"'s subject token cannot be read`, {
        grant: grant.id,
        hint: `check grants.${grant.id}.subject.secret (keyway doctor reads it)`,
      });
    }
    configuredSubjects.set(key, token);
  }
  return token;
}

function requestOf(grant: Grant, settings: ExchangeSettings, forWhom: OnBehalf, context: IssueContext): ExchangeRequest {
  return {
    subjectToken: subjectToken(grant, settings, forWhom, context),
    subjectTokenType: settings.subjectTokenType,
    audience: settings.audience,
    resource: settings.resource,
    scope: settings.scope,
    requestedTokenType: settings.requestedTokenType,
    actorChain: forWhom.chain !== undefined && forWhom.chain.length > 1 ? forWhom.chain : undefined,
  };
}

const issuedOf = (token: Exchanged, refreshed: boolean, request: ExchangeRequest): IssuedCredential => ({
  credential: { kind: 'token', value: token.accessToken },
  refreshed,
  onBehalfOf: subjectOf(request.subjectToken),
});

export const exchangeIssuer: RequestIssuer = {
  by: 'request',
  async issue(grant, material, forWhom, context) {
    const settings = grant.settings as ExchangeSettings;
    const request = requestOf(grant, settings, forWhom, context);
    const got = await cacheFor(grant, settings, requiredClient(grant, material), context).get(request);
    return issuedOf(got.token, got.exchanged, request);
  },
  async afterRejection(grant, material, forWhom, used, context) {
    const settings = grant.settings as ExchangeSettings;
    const request = requestOf(grant, settings, forWhom, context);
    const tokens = cacheFor(grant, settings, requiredClient(grant, material), context);
    const refused = used.kind === 'token' ? used.value : '';
    const got = await tokens.afterRejection(request, refused, grant.renewFloorMs ?? DEFAULT_RENEW_FLOOR_MS);
    if (got.floored) return { ...issuedOf(got.token, false, request), floored: true };
    return issuedOf(got.token, true, request);
  },
};

/** A token type as the config names it, as RFC 8693 writes it. */
export const tokenTypeUri = (name: keyof typeof TOKEN_TYPES): string => TOKEN_TYPES[name];
