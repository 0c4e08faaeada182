/** The message `run` throws with; fails the test when it throws nothing. */
export function thrownMessage(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}
