export * from './schema.ts';
export * from './load.ts';
export * from './duration.ts';
export * from './listen.ts';
export * from './secret-ref.ts';
export * from './domain-pattern.ts';
