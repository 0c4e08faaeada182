// Types for scripts/bundle.mjs (a plain script, run by any Node >= 20), for the tests that use it.
import type { InputOptions, OutputOptions, Plugin } from 'rolldown';

export declare const ENTRIES: readonly string[];
export declare const MODULE_URL_USERS: Readonly<Record<string, string>>;
export declare function bundleOptions(root: string): { input: InputOptions & { plugins: Plugin[] }; output: OutputOptions };
