import type { IssuedCredential } from '../../credentials/credential-source.ts';
import type { Grant } from '../../credentials/grants.ts';
import type { OutgoingRequest } from '../../credentials/injectors/index.ts';
import type { AuditDraft } from '../audit-event.ts';
import type { AwsRequestSigning } from './aws-scope.ts';
import type { ClientRequest } from '../client-message.ts';
import type { Connection } from '../connection.ts';
import type { ReplayHolder } from '../replay-body.ts';
import type { LimitScope } from '../../policy/rate-limits.ts';
import type { RuleApproval } from '../../policy/rules.ts';
import type { JsonRpcId } from '../../mcp/json-rpc.ts';
import type { ToolsListFilter } from '../../mcp/tools-list.ts';

const NOTHING = (): void => undefined;

/**
 * One request on its way through the head stages (stages/index.ts): what the client sent, and
 * what each stage has found or decided so far. The exchange (exchange.ts) is one of these, so a
 * request costs one object; a WebSocket handshake uses one on its own.
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
  /** The request as it goes upstream (stage outgoing), the credential on it once injected. */
  outgoing: OutgoingRequest | undefined = undefined;
  issued: IssuedCredential | undefined = undefined;
  /** What the agent said the request is for (X-Keyway-Purpose), cleaned (stage purpose). */
  purpose: string | undefined = undefined;
  /** An aws_sigv4 grant's signing plan (stage aws-scope); signed once the body is known (body.ts). */
  aws: AwsRequestSigning | undefined = undefined;
  /** The allow rule that wants a purpose for this request (stage access), if every matching one does. */
  purposeRule: string | undefined = undefined;
  /** The path is one of the grant's MCP endpoints (stage access): its messages are judged (stage mcp). */
  mcpEndpoint = false;
  /**
   * The JSON-RPC requests posted (stage mcp): their ids, the tools a person is asked about, and the
   * SHA-256 of the calls (tools and arguments, not ids) that a yes for once is bound to.
   */
  mcpCall: { tools: string; ids: JsonRpcId[]; batch: boolean; key: string | undefined } | undefined = undefined;
  /** tools/list requests in it, and what the agent may call (the response stage mcp-tools-list). */
  mcpList: ToolsListFilter | undefined = undefined;
  /** The rule that wants a person's yes for this request (stage access), if every matching one does. */
  approvalRule: RuleApproval | undefined = undefined;
  /** A body of undeclared size held whole to check a rule's max_body (stage access): sent as is. */
  heldBody: Buffer | undefined = undefined;
  /** The limits with a bytes quota this request counts against (stage limits), and its body bytes sent (stage count-body). */
  byteQuotas: readonly LimitScope[] | undefined = undefined;
  bytesSent = 0;
  /**
   * Signatures keyway made that work on their own for a while (a presigned URL's): the leak guard
   * looks for them in the answer too. Header signatures are not listed: they replay only the same
   * request, within the clock skew, and scanning every signed answer for them would cost every download.
   */
  signatures: string[] | undefined = undefined;
  /** The grant's secret was put in the body (stage body-swap): a replay after a refresh would carry the old one. */
  bodySwapped = false;
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
  onClientGone(_listener: () => void): () => void {
    return NOTHING;
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
