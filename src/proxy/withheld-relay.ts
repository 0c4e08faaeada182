import type { Dispatcher } from 'undici';
import type { WithheldAnswer } from './forward.ts';

/**
 * A dispatcher that answers once with an answer already read from the upstream (a 401 withheld for
 * a replay that did not happen), so that it reaches the client through forward() and the same
 * response stages as any answer: hop-by-hop fields dropped, the leak guard on its body.
 */
export function answerOnce(answer: WithheldAnswer): Dispatcher {
  return {
    dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const controller = new OneAnswerController();
      queueMicrotask(() => {
        handler.onRequestStart?.(controller, {});
        if (controller.aborted) return;
        handler.onResponseStart?.(controller, answer.status, answer.headers, '');
        if (answer.body.length > 0 && !controller.aborted) handler.onResponseData?.(controller, answer.body);
        // Paused or not, the rest is this one end: the client response buffers what it cannot write yet.
        if (!controller.aborted) handler.onResponseEnd?.(controller, {});
      });
      return true;
    },
  } as unknown as Dispatcher;
}

class OneAnswerController implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;

  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }
}
