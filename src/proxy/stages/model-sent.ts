import type { RequestSentHook } from './hooks.ts';

/**
 * Model traffic (stage budget marks it): a body with no budget is read as undici sends it (stage
 * model-body left its reader on the exchange), its facts set once it went up whole; and a request
 * that went up whole is marked sent, so that an answer the agent then leaves before its head still
 * counts (model-exchange.ts).
 */
export const modelSent: RequestSentHook = {
  name: 'model-sent',
  bodySent(request, chunk) {
    request.model?.bodyRead?.push(chunk);
  },
  sent(request) {
    const model = request.model;
    if (model === undefined) return;
    model.sent = true;
    model.bodyRead?.finish(model);
  },
};
