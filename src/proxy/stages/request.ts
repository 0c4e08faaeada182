import type { IssuedCredential } from '../../credentials/issuing/issued-credential.ts';
import type { Grant } from '../../credentials/grant.ts';
import type { OutgoingRequest } from '../../credentials/injectors/index.ts';
import type { AuditDraft } from '../audit-event.ts';
import type { OpenBooks, OpenLink } from '../contract.ts';
import type { ProxyError } from '../../errors/index.ts';
import { type ClientRequest, cutRequest } from '../client-message.ts';
import type { Connection } from '../connection.ts';
import type { ReplayHolder, RequestBody } from '../replay-body.ts';
import type { LimitScope } from '../../policy/rate-limits.ts';
import type { AgentPolicy, RuleApproval } from '../../policy/rules.ts';
import type { LoadedPolicy } from '../../policy/cedar/contract.ts';
import type { JsonRpcId } from '../../mcp/json-rpc.ts';
import type { ToolsListFilter } from '../../mcp/tools-list.ts';
import type { CaptureExchange } from './capture-exchange.ts';
import type { ModelExchange } from './model-exchange.ts';
import type { AnomalyJudged } from './anomaly-signals.ts';

const NOTHING = (): void => undefined;

/** A request on one of its grant's MCP endpoints: what stage mcp read of its messages. */
export interface McpExchange {
  /**
   * The JSON-RPC requests posted (stage mcp writes; stage approval reads): their ids, the tools a
   * person is asked about, and the SHA-256 of the calls (tools and arguments, not ids) that a yes
   * for once is bound to. Undefined for a GET or DELETE.
   */
  call: { tools: string; ids: JsonRpcId[]; batch: boolean; key: string | undefined } | undefined;
  /** tools/list requests in it, and what the agent may call (stage mcp writes; the response stage mcp-tools-list reads). */
  list: ToolsListFilter | undefined;
}

/**
 * How a signing grant's request is signed (stage signing-plan writes, having planned it; the body
 * stage sign signs through it; the exchange reads its signatures).
 */
export interface RequestSigning {
  /**
   * Signatures keyway made that work on their own for a while (a presigned URL's): the leak guard
   * looks for them in the answer too. Header signatures are not listed: they replay only the same
   * request, within the clock skew, and scanning every signed answer for them would cost every download.
   */
  readonly signatures: readonly string[] | undefined;
  /** Signs the request once its body is known; returns the body to send. */
  sign(body: RequestBody): RequestBody | Promise<RequestBody>;
}

/** A request under a bytes quota: stage limits writes it, the body stage count-body adds what went up, the close stage byte-quota counts it. */
export interface ByteQuota {
  readonly scopes: readonly LimitScope[];
  /** Body bytes sent upstream so far. */
  sent: number;
}

/**
 * One request on its way through the head stages (stages/index.ts): what the client sent, and
 * what each stage has found or decided so far, each in a field one stage writes and later ones
 * read. The exchange (exchange.ts) is one of these, so a request costs one object; a WebSocket
 * handshake uses one on its own. A feature's member stays undefined on a request that does not use
 * it: nothing is allocated for it.
 */
export class StagedRequest {
  readonly conn: Connection;
  readonly req: ClientRequest;
  readonly draft: AuditDraft;
  /** The request target: as sent, then in origin form (stage origin-form). */
  target: string;
  /** The normalised path and query (stage path); the query is `''` or `?…`. */
  path = '';
  query = '';
  /** The grant this request uses (stage grant); undefined: forwarded untouched. */
  grant: Grant | undefined = undefined;
  /** The request as it goes upstream (stage outgoing), the credential on it once injected (stage credential). */
  outgoing: OutgoingRequest | undefined = undefined;
  issued: IssuedCredential | undefined = undefined;
  /** What the agent said the request is for (X-Keyway-Purpose), cleaned (stage purpose). */
  purpose: string | undefined = undefined;
  /** The allow rule that wants a purpose for this request (stage access writes, if every matching one does; stage purpose-required reads). */
  purposeRule: string | undefined = undefined;
  /** The request judged against the agent's history (stage anomaly-signals writes; the policy's context, anomaly and anomaly-taught read). */
  anomaly: AnomalyJudged | undefined = undefined;
  /** The rule that wants a person's yes for this request (stage access, or mcp for a tool call, writes; stage approval reads). */
  approvalRule: RuleApproval | undefined = undefined;
  /**
   * The policy that judges this request, its hash on the line (stage access takes it; stage mcp
   * judges the body's tools/call with it, even when a reload came while the body was on its way).
   */
  policy: LoadedPolicy | undefined = undefined;
  /** The agent's YAML rules as stage access judged by them (their compiled text is in that policy's hash): stage mcp judges by them too. */
  rules: AgentPolicy | undefined = undefined;
  /** The path is one of the grant's MCP endpoints (stage access writes it, empty); its messages are judged (stage mcp). */
  mcp: McpExchange | undefined = undefined;
  /** A signing grant's plan, and the signatures made (stage signing-plan writes; body stage sign and the exchange read). */
  signing: RequestSigning | undefined = undefined;
  /**
   * The body, held whole (body-hold.ts: for a rule's max_body, an MCP message, an approval, a
   * signature): the body stage held-body sends these bytes, and a later hold returns them.
   */
  heldBody: Buffer | undefined = undefined;
  /** The bytes quotas this request counts against (stage limits writes; count-body and the close stage byte-quota read). */
  byteQuota: ByteQuota | undefined = undefined;
  /** A capture grant's request (stage capture writes; capture-body, the exchange and the answer's stage capture-answer read). */
  login: CaptureExchange | undefined = undefined;
  /** The grant's secret was put in the body (stage body-swap writes): a replay after a refresh would carry the old one (the exchange reads). */
  bodySwapped = false;
  /**
   * The answer is read to its end even if the client leaves, and rewritten by its response stage all
   * the same (a login capture's refresh through a captured token: stage capture-body writes; the
   * exchange reads).
   */
  finishesWithoutClient = false;
  /**
   * The placeholder keys of the captured tokens this request's head resolved (stage open-exchange
   * writes; the sweep ends what the request holds open once one of them is dropped from the store).
   */
  resolvedLogins: readonly string[] | undefined = undefined;
  /** Its place on the open-exchange books while it is on them (open-exchanges.ts writes; contract.ts OpenEntry). */
  openLink: OpenLink | undefined = undefined;
  /** Model traffic (stage budget writes): its answer is metered (the answer tap model-meter) and counted at close (the close stage model-count). */
  model: ModelExchange | undefined = undefined;
  /** The budget held bodies come out of; none for a handshake, which has no body. */
  holder: ReplayHolder | undefined;

  constructor(conn: Connection, req: ClientRequest, draft: AuditDraft, target: string, holder?: ReplayHolder) {
    this.conn = conn;
    this.req = req;
    this.draft = draft;
    this.target = target;
    this.holder = holder;
  }

  /**
   * Calls `listener` if the client hangs up while the request waits (a hold for a person's yes);
   * returns its remover. A request with no response of its own to watch (a WebSocket handshake's)
   * is never told.
   */
  /**
   * Keeps this request on `open`'s books until its response (or socket) closes (stage
   * open-exchange). An exchange overrides it to leave from the close handler it already has: a
   * listener added per request shows in profiles.
   */
  holdOpenIn(open: Pick<OpenBooks, 'add' | 'delete'>): void {
    open.add(this);
    this.onClientGone(() => open.delete(this));
  }

  onClientGone(_listener: () => void): () => void {
    return NOTHING;
  }

  /**
   * Ends what this request holds open, now that its grant or login no longer stands (open-exchanges.ts):
   * the audit line says why, and the answer still coming is cut (a WebSocket's handshake closes its
   * socket its own way: websocket/forwarder.ts).
   */
  revoke(error: ProxyError): void {
    this.draft.failed(error);
    cutRequest(this.req);
  }

  /** The normalised path and query, as sent upstream before any credential went on it. */
  get requestPath(): string {
    return `${this.path}${this.query}`;
  }
}

/**
 * A head stage: reads and decides on the request before anything goes upstream. It refuses by
 * throwing a ProxyError, and may return a promise (a token refresh, a lease written, a hold).
 * `injected`: runs only when a grant was chosen (the request gets a credential).
 */
export interface HeadStage {
  readonly name: string;
  readonly injected: boolean;
  run(request: StagedRequest): void | Promise<void>;
}
