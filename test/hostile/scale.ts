// The adversarial suites run in two sizes: short inside `npm test` (CI), long by hand with
// `npm run hostile -- --long`. Every loop takes its count from here, so both stay bounded.

/** True under `npm run hostile -- --long` (KEYWAY_HOSTILE=long). */
export const LONG = process.env['KEYWAY_HOSTILE'] === 'long';

/** The short figure in `npm test`, the long one by hand. */
export function scale<T>(short: T, long: T): T {
  return LONG ? long : short;
}

/** Prints one suite figure where both vitest and a reader of the long run's output see it. */
export function report(suite: string, figures: Record<string, unknown>): void {
  console.log(`[hostile:${suite}] ${JSON.stringify(figures)}`);
}
