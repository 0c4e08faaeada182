// The audit module's public surface: the line format, the writer, verify, queries and the app logger.

export { GENESIS_HASH, stripQuery } from './record.ts';
export type { AuditDecision, AuditEvent, AuditLine } from './record.ts';
export type { AuditSink } from './sink.ts';
export { AuditWriter, DEFAULT_AUDIT_KEEP } from './writer.ts';
export { chainFiles, listRotated, prunedPathFor, rotatedPath } from './files.ts';
export type { RotatedFile } from './files.ts';
export type { AuditWriterOptions } from './writer.ts';
export { verifyAudit } from './verify.ts';
export type { AuditProblem, VerifyOptions, VerifyResult } from './verify.ts';
export { readAudit, tailAudit } from './query.ts';
export type { AuditFilter, TailOptions } from './query.ts';
export { createAppLogger, REDACT_PATHS, REDACTED } from './logger.ts';
export { formatLogLine, prettyDestination } from './pretty-log.ts';
export type { AppLoggerOptions } from './logger.ts';
