import type { Credential } from '../material.ts';

/** What issuing a grant's credential gives the request: the credential, and what the audit line says of it. */
export interface IssuedCredential {
  credential: Credential;
  /** A token refresh (or an STS AssumeRole) happened to produce it. */
  refreshed: boolean;
  /** Whose behalf it acts on (a token exchange's subject), for the audit line. */
  onBehalfOf?: string | undefined;
  /**
   * afterRejection only: the grant renewed for a 401 less than its renew_floor ago, so none was
   * made; this is the credential refused, and the 401 goes to the agent as it came.
   */
  floored?: true | undefined;
}
