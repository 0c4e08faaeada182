// Types for generate.mjs (a plain script), for the tests that use it.
export declare const CHART_DIR: string;
export declare const RELEASE: string;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export declare function mergeValues(base: Json, over: Json): Json;
export declare function renderChart(values: Json, release?: string): { file: string; object: { [key: string]: Json } }[];
export declare function chartValues(extraFile?: string): { [key: string]: Json };
export declare function chartFiles(): Map<string, string>;
export declare function driftedFiles(): string[];
