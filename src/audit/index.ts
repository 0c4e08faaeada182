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
export type { SeqRange, TailOptions } from './query.ts';
export type { AuditFilter } from './filter.ts';
export { createAppLogger, REDACT_PATHS, REDACTED } from './logger.ts';
export { formatLogLine, prettyDestination } from './pretty-log.ts';
export type { AppLoggerOptions } from './logger.ts';
export { AUDIT_DECISIONS, compileFilter, parseAuditFilter } from './filter.ts';
export type { AuditFilterText } from './filter.ts';
export { MAX_AUDIT_PAGE, pageAudit } from './page.ts';
export type { AuditOrder, AuditPage, AuditPageRequest } from './page.ts';
export { AuditFeed } from './feed.ts';
export type { AuditListener } from './feed.ts';
