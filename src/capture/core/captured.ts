// Captured tokens as records (capture/store/records.ts keeps them in the store): what one holds,
// the answer a refresh got, and a grant's logins as listings show them. Pure, below credentials,
// whose grant listing reads them.

export interface CapturedToken {
  grant: string;
  agent: string;
  /** The answer field it came in (access_token, refresh_token, id_token, or the grant's own). */
  field: string;
  /** The real value. */
  value: string;
  /** The placeholder's vendor prefix (`gho_`), written before its key; '' for most. */
  prefix: string;
  /** One login and the refreshes that followed it share this (listings group by it). */
  login: string;
  /** The token endpoint that issued it (host and path). */
  endpoint: string;
  captured_at: string;
  /** When the real token stops working, when the answer said (expires_in, a JWT's exp). */
  expires_at?: string | undefined;
  /**
   * A refresh token exchanged at its endpoint: when, and the answer the agent got (placeholders
   * only). Another refresh with it (a second process of the agent, a retry) gets that same answer
   * instead of going upstream with a token the server has rotated away.
   */
  exchanged_at?: string | undefined;
  answer?: StoredAnswer | undefined;
}

export interface StoredAnswer {
  status: number;
  content_type: string | undefined;
  /** The answer's body as the agent got it: placeholders, never a real token. */
  body: string;
  /** The refresh token in it is this one again (the server did not rotate it). */
  rotated: boolean;
}

/** How long an exchanged refresh token's answer is given again to a refresh with it, when the server did not rotate it. */
export const SAME_ANSWER_MS = 30_000;

/** The usage record key of one login (its last use: app/usage-recorder.ts). */
export function loginUsageKey(grant: string, agent: string, login: string): string {
  return `capture-login:${grant}:${agent}:${login}`;
}

/** One login's tokens, as listings show them (never a value). */
export interface CapturedLogin {
  agent: string;
  login: string;
  fields: string[];
  captured_at: string;
  /** The access token's expiry (else the earliest of the others'). */
  expires_at: string | undefined;
  endpoint: string;
}

/** A grant's captured logins, newest first: its live tokens grouped by login. */
export function capturedLogins(records: ReadonlyArray<[string, CapturedToken]>, grantId: string): CapturedLogin[] {
  const logins = new Map<string, CapturedLogin>();
  for (const [, record] of records) {
    if (record.grant !== grantId || (record.exchanged_at !== undefined && record.answer?.rotated)) continue;
    const key = `${record.agent}\u0000${record.login}`;
    const entry = logins.get(key) ?? {
      agent: record.agent,
      login: record.login,
      fields: [],
      captured_at: record.captured_at,
      expires_at: undefined,
      endpoint: record.endpoint,
    };
    if (!entry.fields.includes(record.field)) entry.fields.push(record.field);
    if (record.captured_at > entry.captured_at) entry.captured_at = record.captured_at;
    // The newest access token's expiry; a login without one shows its other tokens'.
    if (record.expires_at !== undefined && (entry.expires_at === undefined || (record.field === 'access_token' && record.expires_at > entry.expires_at)))
      entry.expires_at = record.expires_at;
    logins.set(key, entry);
  }
  return [...logins.values()].sort((a, b) => b.captured_at.localeCompare(a.captured_at));
}
