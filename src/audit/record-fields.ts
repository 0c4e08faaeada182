// The audit line's fixed fields, apart from record.ts so that the line's writer (line-text.ts), which
// record.ts uses, can read them without an import cycle.

/** The documented field order (README, "Audit log"). Extra fields follow, sorted by name, then `seq`, `prev`, `hash`. */
export const EVENT_FIELDS = [
  'ts',
  'id',
  'agent',
  'grant',
  'decision',
  'code',
  'method',
  'host',
  'port',
  'path',
  'status',
  'duration_ms',
  'refreshed',
  'client',
] as const;
