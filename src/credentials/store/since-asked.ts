// A look at the store that must have begun after its caller asked (a value an upstream refused, its
// drop written before the ask, must be seen), shared all the same: one look at a time, and whoever
// asks while one runs waits for the next, which starts when that one ends and answers them all. A
// burst of 200 requests costs two looks, not 200, and none is answered by a look older than its question.

/** `look`, run for each caller by a run that began after it called; a failed run fails its callers only. */
export function lookSinceAsked(look: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const run = look().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  };
  return () => {
    if (running === undefined) return start();
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = undefined;
        return start();
      });
    return next;
  };
}
