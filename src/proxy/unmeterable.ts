import { ProxyError } from '../errors/index.ts';

/**
 * The refusal of a request on a model host that keyway cannot meter while a model budget applies
 * (issue 85): it would spend uncounted. `what` names the request and why, never a value the agent
 * wrote. 429 like budget_exceeded, without Retry-After: the same request is never meterable.
 */
export function unmeterable(what: string, grant: string | undefined, hint: string): ProxyError {
  return new ProxyError('budget_unmeterable', `keyway cannot meter ${what}, and a model budget applies`, { grant, hint });
}
