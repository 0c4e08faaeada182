// Types for chart-package.mjs (a plain script), for the tests that use it.
import type { TarEntry } from './tar.mjs';

export declare function chartEntries(): TarEntry[];
export declare function chartPackage(epoch: number): Buffer;
export declare function writeChartPackage(options: { out: string; epoch?: number }): string;
