// Every field of the audit line (src/audit/event.ts) is decided for the SIEM export: copied by the
// allow-list (src/audit-export/fields.ts), or named in docs/audit.md's export section with why not.
// A field added to the line later fails this until someone decides.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exportedLine } from '../../../src/audit-export/fields.ts';
import type { AuditLine } from '../../../src/audit/record.ts';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

/** The top-level field names of AuditEvent, as event.ts declares them (two-space indent inside the interface). */
function eventFields(): string[] {
  const source = read('src/audit/event.ts');
  const body = source.slice(source.indexOf('export interface AuditEvent {'), source.indexOf('\n}\n', source.indexOf('export interface AuditEvent {')));
  return [...body.matchAll(/^ {2}([a-z][a-z0-9_]*)\??:/gm)].map((m) => m[1]!);
}

function exportSection(): string {
  const doc = read('docs/audit.md');
  const start = doc.indexOf('## Export to a SIEM');
  return doc.slice(start, doc.indexOf('\n## ', start + 1));
}

const BASE = {
  ts: 't',
  id: 'i',
  agent: null,
  grant: null,
  decision: 'inject',
  code: null,
  method: null,
  host: 'h',
  port: 1,
  path: null,
  status: null,
  duration_ms: 0,
  refreshed: false,
  client: '',
  seq: 1,
  prev: '',
  hash: '',
};

const FULL: Partial<AuditLine> = {
  rule: 'r',
  action: 'grants.create',
  actor: 'me@host',
  chain: ['root', 'child'],
  phase: 'sent',
  approval: { id: 'ap-1', outcome: 'approved_once', by: 'alice' },
  repeated: 3,
  replica: 'r1',
  signal: [{ name: 'burst', why: 'w' }],
  policy: `sha256:${'c'.repeat(64)}`,
  policy_mode: 'warn',
};

describe('the export allow-list against the audit line', () => {
  it('reads the line shape (the parse itself finds the fields it should)', () => {
    const fields = eventFields();
    expect(fields).toEqual(expect.arrayContaining(['ts', 'signal', 'policy', 'purpose', 'path_sha256', 'recovered']));
    expect(fields.length).toBeGreaterThan(50);
  });

  it('exports each field or names it in docs/audit.md with its reason', () => {
    const exported = new Set(Object.keys(exportedLine({ ...BASE, ...FULL } as AuditLine)));
    const doc = exportSection();
    const undecided = eventFields().filter((f) => !exported.has(f) && !doc.includes(`\`${f}\``));
    expect(undecided).toEqual([]);
    // And the table names no field as withheld that is in fact sent.
    const table = doc.slice(doc.indexOf('| Not exported |'), doc.indexOf('**Where the new fields go.**'));
    for (const f of exported) expect(table, f).not.toContain(`\`${f}\``);
  });

  it('drops a policy that is not a hash, and cuts a long why', () => {
    const out = exportedLine({ ...BASE, ...FULL, policy: 'sha256:/etc/x', signal: [{ name: 'burst', why: 'é'.repeat(500) }] } as AuditLine);
    expect(out.policy).toBeUndefined();
    expect(Buffer.byteLength(out.signal![0]!.why)).toBeLessThanOrEqual(200);
  });
});
