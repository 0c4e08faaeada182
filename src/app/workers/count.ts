import { availableParallelism } from 'node:os';

/** proxy.workers as a number of processes: `auto` is one per core the process may use. */
export function workerCount(setting: number | 'auto', cores: () => number = availableParallelism): number {
  return setting === 'auto' ? Math.max(1, cores()) : setting;
}
