// Types for elf-needs.mjs (a plain script), for the tests that use it.
export declare function elfNeeds(bytes: Buffer): { interpreter: string | undefined; needed: string[] };
