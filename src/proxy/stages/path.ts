import { ProxyError } from '../../errors/index.ts';
import { normaliseRequestTarget } from '../../policy/request-path.ts';
import type { HeadStage } from './request.ts';

/**
 * One reading of the path, judged and sent (src/policy/request-path.ts); what cannot be put in one
 * safe form is refused. The audit line gets the normalised path, never the raw target.
 */
export const path: HeadStage = {
  name: 'path',
  injected: false,
  run(request) {
    const normalised = normaliseRequestTarget(request.target);
    if (!normalised.ok) {
      request.draft.event.path = null;
      throw new ProxyError('bad_request', `the request path cannot be normalised safely: ${normalised.reason}`);
    }
    request.draft.event.path = normalised.path;
    request.path = normalised.path;
    request.query = normalised.query;
  },
};
