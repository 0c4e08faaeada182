// ArcSight CEF (Common Event Format, revision 25): `CEF:0|Vendor|Product|Version|SignatureID|Name|
// Severity|Extension`. In the header a `\` and `|` are escaped with `\`; in the extension a `\` and
// `=` are, a newline is written `\n` and a carriage return `\r`; other control characters are
// replaced (text.ts). Keys are CEF's own where one fits (rt, src, suser, dhost, dpt, requestMethod,
// request, act, reason, externalId, msg) and custom fields with labels for the rest (flexString1: the
// anomaly signals' names, flexString2: the policy hash).

import type { ExportedLine } from './fields.ts';
import { fitted, withoutControls } from './text.ts';

const NAMES: Record<string, string> = {
  inject: 'request forwarded with a credential',
  tunnel: 'tunnel closed',
  deny: 'request refused',
  error: 'request failed',
  admin: 'operator change',
  approval: 'approval',
  self_check: 'self check',
};

const SEVERITY: Record<string, number> = { inject: 3, tunnel: 3, self_check: 1, approval: 5, admin: 5, deny: 6, error: 7 };

export function escapeCefHeader(text: string): string {
  return withoutControls(text.replace(/[\\|]/g, (c) => `\\${c}`).replace(/\r\n|\r|\n/g, ' '));
}

export function escapeCefValue(text: string): string {
  return withoutControls(
    text
      .replace(/[\\=]/g, (c) => `\\${c}`)
      .replace(/\r\n|\n/g, '\\n')
      .replace(/\r/g, '\\r'),
  );
}

/** One line as a CEF record of at most `limit` bytes (the path is cut first, with cs6 saying so). */
export function toCef(line: ExportedLine, productVersion: string, limit: number): string {
  const signature = line.code === null ? line.decision : `${line.decision}:${line.code}`;
  const header = ['CEF:0', 'keyway', 'keyway', productVersion, signature, NAMES[line.decision] ?? line.decision, String(SEVERITY[line.decision] ?? 5)]
    .map((part, i) => (i === 0 ? part : escapeCefHeader(part)))
    .join('|');
  return fitted(line.path, limit, (path, cut) => `${header}|${extension(line, path, cut)}`);
}

function extension(line: ExportedLine, path: string | null, cut: boolean): string {
  const pairs: Array<[string, string | number | null | undefined]> = [
    ['rt', Date.parse(line.ts)],
    ['externalId', line.id],
    ['act', line.decision],
    ['reason', line.code],
    [ipv(line.client) ? 'src' : 'shost', line.client],
    ['suser', line.decision === 'admin' ? line.actor : line.agent],
    ['requestMethod', line.method],
    ['dhost', line.host],
    ['dpt', line.port],
    ['request', path],
    ['cn1Label', 'seq'],
    ['cn1', line.seq],
    ['cn2Label', 'status'],
    ['cn2', line.status],
    ['cn3Label', 'duration_ms'],
    ['cn3', line.duration_ms],
    ['cs1Label', 'grant'],
    ['cs1', line.grant],
    ['cs2Label', 'rule'],
    ['cs2', line.rule],
    ['cs3Label', 'chain'],
    ['cs3', line.chain?.join(',')],
    ['cs4Label', 'hash'],
    ['cs4', line.hash],
    ['cs5Label', 'action'],
    ['cs5', line.action ?? line.approval],
    // An anomaly signal: the names in flexString1, keyway's whys in msg (CEF's "more details").
    ['flexString1Label', 'signal'],
    ['flexString1', line.signal?.map((s) => s.name).join(',')],
    ['msg', line.signal?.map((s) => `${s.name}: ${s.why}`).join('; ')],
    ['flexString2Label', 'policy'],
    ['flexString2', line.policy],
    ['cs6Label', 'note'],
    ['cs6', note(line, cut)],
  ];
  const kept = pairs.filter(([key, value], i) => {
    if (key.endsWith('Label')) {
      const next = pairs[i + 1]?.[1];
      return next !== null && next !== undefined;
    }
    return value !== null && value !== undefined;
  });
  return kept.map(([key, value]) => `${key}=${escapeCefValue(String(value))}`).join(' ');
}

/** What has no key of its own, `; `-separated: a write-ahead line, a cut path, a summary's count, a warn-only refusal, who answered an approval. */
function note(line: ExportedLine, cut: boolean): string | null {
  const parts = [
    line.phase === 'sent' ? 'phase=sent' : null,
    cut ? 'path cut' : null,
    line.repeated ? `repeated ${line.repeated}` : null,
    line.policy_mode === 'warn' ? 'policy_mode=warn' : null,
    line.approval_id === undefined ? null : `approval ${line.approval_id}`,
    line.approval_by === undefined ? null : `by ${line.approval_by}`,
  ];
  return parts.filter(Boolean).join('; ') || null;
}

function ipv(client: string): boolean {
  return /^[0-9a-fA-F:.]+$/.test(client) && client !== '';
}
