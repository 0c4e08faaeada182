// The config's light surface: types and small helpers that the proxy process uses at run time.
// Loading and validating a config file (yaml, zod, the public suffix list) lives in load.ts and
// is imported from there only where a config is read, so the running proxy never holds those
// libraries (about 40 MiB of RSS between them, measured).
export type * from './schema/config.ts';
export * from './ids.ts';
export * from './paths.ts';
export * from './duration.ts';
export * from './byte-size.ts';
export * from './listen.ts';
export * from './secret-ref.ts';
export * from './secret-variables.ts';
export * from './secret-command.ts';
export * from './domain-pattern.ts';
export * from './cidr.ts';
export * from './loopback.ts';
export * from './rule-syntax.ts';
