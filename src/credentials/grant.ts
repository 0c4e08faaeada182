import type { IncomingHttpHeaders } from 'node:http';
import type { DomainPattern, GrantType, SecretCommand } from '../config/index.ts';
import type { SourcedSecret } from '../config/secret-sources.ts';
import type { ModelApiHint } from '../config/spend.ts';
import type { ProxyError } from '../errors/index.ts';
import type { PathGlob } from '../policy/glob.ts';
import type { CaptureSettings } from '../capture/core/settings.ts';
import type { ClientCertificate } from './client-certificate.ts';
import type { GrantStatus } from './grant-record.ts';
import type { Injector } from './injectors/index.ts';
import type { SecretMaterial } from './material.ts';
import type { RequestSigner } from './signing/signer.ts';

// What a credential type and the proxy share about a grant: the compiled grant, and the answers a
// type gives about its requests (a retry verdict, a guard). The contract's bottom: it imports only
// what a grant is made of, never a type, the grant table (grant-table.ts) or what issues credentials.

/** A grant as the proxy uses it: parsed patterns, a ready injector, the secret in memory. */
export interface Grant {
  readonly id: string;
  readonly type: GrantType;
  readonly domains: readonly DomainPattern[];
  readonly injector: Injector;
  readonly allowHttp: boolean;
  /** Range and If-Range are forwarded on injected requests (dropped otherwise: proxy/headers.ts). */
  readonly allowRange: boolean;
  /** Every request through it must carry X-Keyway-Purpose (proxy/stages/purpose.ts). */
  readonly requirePurpose: boolean;
  /** model_api: how its model answers are metered (issue 63); undefined: by the vendors' own hosts. */
  readonly modelApi?: ModelApiHint | undefined;
  /** inject: {body: true}: keyway-placeholder-<id>, replaced in bodies and client WebSocket messages (proxy/stages/body-swap.ts). */
  readonly bodyPlaceholder?: string | undefined;
  /** inject: {body: {fields: […]}}: the only JSON members and form fields swapped in (undefined: any). */
  readonly bodyFields?: ReadonlySet<string> | undefined;
  /**
   * Its type's own settings, compiled once by its kind (an AWS grant's region and role, a GitHub
   * App's API): read only by its type's files (credentials/types/<type>/), never by the proxy.
   */
  readonly settings: object | undefined;
  /**
   * Its type's reading of each answer to the grant's requests (it may learn from any: a DPoP
   * nonce), and what to do about one: see RetryVerdict. Absent: keyway's default for every answer.
   */
  readonly retry: RetryAsk | undefined;
  /** A refusal its type makes before the agent's rules are judged (a GitHub App's own /app endpoints: only keyway mints). */
  readonly guard: RequestGuard | undefined;
  /** login_capture: the token endpoints watched and the fields swapped (capture/, proxy/stages/capture*.ts). */
  readonly logins?: CaptureSettings | undefined;
  /**
   * How its requests are signed (aws_sigv4, an hmac grant with a scheme), compiled once by its kind:
   * the proxy plans (stage signing-plan) and signs (body stage sign) through it, never by type.
   */
  readonly signer: RequestSigner | undefined;
  /**
   * The client certificate presented on this grant's upstream connections (mTLS), read once by the grant table:
   * an mtls grant's secret, or the certificate another grant carries beside its secret.
   */
  readonly clientCertificate: ClientCertificate | undefined;
  /** Paths that are MCP endpoints (src/mcp/, proxy/stages/mcp.ts), and the largest body read there. */
  readonly mcp?: McpEndpoints | undefined;
  /** When its secret itself stops working (a jwt's exp, epoch ms), where its type reads one; never sent past it. */
  readonly secretExpiresAt: number | undefined;
  /** renew_floor in ms: a 401 renews its token at most once per this (absent: DEFAULT_RENEW_FLOOR_MS). */
  readonly renewFloorMs?: number | undefined;
  readonly status: GrantStatus;
  readonly source: 'config' | 'store';
  readonly provider: string | undefined;
  readonly material: SecretMaterial | undefined;
  /** A config grant whose secret a command prints (credentials/providers/cmd-secrets.ts): run on use, never when the table is built. */
  readonly secretCommand?: SecretCommand | undefined;
  /** A config grant whose secret is an item of a secret source (credentials/sources/): fetched on use, cached for the source's ttl. */
  readonly secretFrom?: SourcedSecret | undefined;
  /** Where its secret comes from, as the audit line's `secret_source` says (absent: the store). */
  readonly secretSource?: SecretSource | undefined;
}

export interface McpEndpoints {
  readonly paths: readonly PathGlob[];
  readonly maxBody: number;
}

/**
 * The audit line's `secret_source` for a grant's own secret (minted credentials name their type); a
 * secret from a source (secret_sources:) names that source, as the config calls it.
 */
export type SecretSource = 'store' | 'env' | 'file' | 'cmd' | 'google_service_account' | 'github_app' | (string & {});

/**
 * What to do with an answer, as a grant's type reads it: `same`, send the request once more with the
 * same credential signed anew (a DPoP nonce the server asked for); `fresh`, once more with a new
 * credential (a token the server no longer takes); `relay`, pass the answer on as it came;
 * undefined, keyway's default (a 401 that does not ask for a scope gets a fresh credential).
 */
export type RetryVerdict = 'same' | 'fresh' | 'relay' | undefined;

/** Reads an answer's head; `url` is the request's origin and path. */
export type RetryAsk = (status: number, headers: IncomingHttpHeaders, url: string) => RetryVerdict;

/** The request as a grant's guard reads it. */
export interface GuardedRequest {
  readonly grantId: string;
  /** The connection's target host (lower case). */
  readonly host: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** A type's own refusal: the rule named on the audit line, and the error answered. */
export type RequestGuard = (request: GuardedRequest) => { rule: string; error: ProxyError } | undefined;
