import type { RunEndedHook } from './hooks.ts';

/**
 * Run-ended hook "capture-release": a login capture's refresh lock (stage capture-body took it) goes
 * back once the run is over, if its answer never came to be captured (refused, failed, cut short);
 * one taken later still, by a stage yet to settle, goes back at once.
 */
export const captureRelease: RunEndedHook = {
  name: 'capture-release',
  run(request) {
    request.login?.close();
  },
};
