import { describe, expect, it } from 'vitest';
import { escapeCefHeader, escapeCefValue, toCef } from '../../../src/audit-export/cef.ts';
import { exportedLine } from '../../../src/audit-export/fields.ts';
import { encodeLine } from '../../../src/audit-export/encode.ts';
import { OCSF_VERSION, toOcsf } from '../../../src/audit-export/ocsf.ts';
import { escapeSdValue, octetCounted, toSyslog, UDP_LIMIT } from '../../../src/audit-export/syslog.ts';
import type { AuditLine } from '../../../src/audit/record.ts';
import { ocsfProblems } from './ocsf-required.ts';

const HASH = 'a'.repeat(64);

function line(over: Partial<AuditLine> = {}): AuditLine {
  return {
    ts: '2026-11-29T11:00:00.123Z',
    id: 'req-1',
    agent: 'claude',
    grant: 'github',
    decision: 'inject',
    code: null,
    method: 'GET',
    host: 'api.github.com',
    port: 443,
    path: '/repos/x',
    status: 200,
    duration_ms: 12,
    refreshed: false,
    client: '127.0.0.1',
    seq: 7,
    prev: 'b'.repeat(64),
    hash: HASH,
    ...over,
  } as AuditLine;
}

const HOSTILE = '/a|b=c\\d\ne\rf]g"h\u0000i\u2028j\u00e9k\u{1f600}';

describe('the allow-list', () => {
  it('copies only the listed fields, and never a query string', () => {
    const out = exportedLine(
      line({
        path: '/x?token=SECRET#frag',
        purpose: 'SECRET purpose',
        message: 'SECRET message',
        hint: 'h',
        usage: { model: 'm', unknown: true },
      } as Partial<AuditLine>),
    );
    expect(out.path).toBe('/x');
    expect(JSON.stringify(out)).not.toContain('SECRET');
    expect(Object.keys(out)).not.toContain('prev');
  });
});

describe('CEF', () => {
  it('escapes the header and the extension as the format says', () => {
    expect(escapeCefHeader('a|b\\c\nd')).toBe('a\\|b\\\\c d');
    expect(escapeCefValue('a=b\\c\nd\re|f')).toBe('a\\=b\\\\c\\nd\\re|f');
  });

  it('keeps a hostile path in one field: no raw newline, no unescaped = or \\', () => {
    const cef = toCef(exportedLine(line({ path: HOSTILE })), '1.0.0', 8192);
    expect(/[\n\r\0]/.test(cef)).toBe(false);
    const request = /request=([\s\S]*?) cn1Label=/.exec(cef)?.[1] ?? '';
    // Every = and \ in the value is escaped; un-escaping gives the path back (controls replaced).
    expect(request).not.toMatch(/(^|[^\\])(\\\\)*=/);
    const back = request.replace(/\\(n|r|=|\\)/g, (_m, c: string) => ({ n: '\n', r: '\r', '=': '=', '\\': '\\' })[c]!);
    expect(back).toBe(HOSTILE.replace('\u0000', '\ufffd').replace('\u2028', '\ufffd'));
    expect(cef.startsWith('CEF:0|keyway|keyway|1.0.0|inject|')).toBe(true);
  });

  it('escapes a code or version with a pipe in the header', () => {
    const cef = toCef(exportedLine(line({ decision: 'deny', code: 'host_not_allowed' as never })), '1|2', 8192);
    expect(cef.split(/(?<!\\)\|/).length).toBe(8);
  });
});

describe('RFC 5424', () => {
  it('escapes ", \\ and ] in SD values and replaces control characters', () => {
    expect(escapeSdValue('a"b\\c]d\ne')).toBe('a\\"b\\\\c\\]d\ufffde');
  });

  it('writes one well-formed message for a hostile path', () => {
    const msg = toSyslog(exportedLine(line({ path: HOSTILE })), 8192);
    expect(msg).toMatch(/^<110>1 2026-11-29T11:00:00\.123Z \S+ keyway - inject \[keyway@32473 seq="7" /);
    expect(/[\n\r\0]/.test(msg)).toBe(false);
    // The SD element ends at the first unescaped ]: after it comes only the MSG.
    const sd = /\[keyway@32473 ((?:[^\]"\\]|"(?:[^"\\]|\\.)*")*)\]/.exec(msg);
    expect(sd?.[1]).toContain('path="/a|b=c\\\\d\ufffde\ufffdf\\]g\\"h\ufffdi\ufffdj\u00e9k\u{1f600}"');
  });

  it('frames by octet count (bytes, not characters)', () => {
    expect(octetCounted('é').toString('utf8')).toBe('2 é');
  });

  it('bounds a datagram, cutting the path first and saying so', () => {
    const long = `/${'é'.repeat(3000)}`;
    const bytes = encodeLine(line({ path: long }), 'syslog', 'datagram', '1.0.0');
    expect(bytes.length).toBeLessThanOrEqual(UDP_LIMIT);
    expect(bytes.toString('utf8')).toContain('path_cut="true"');
    expect(bytes.toString('utf8')).not.toContain('\ufffd');
    const cef = encodeLine(line({ path: long }), 'cef', 'datagram', '1.0.0');
    expect(cef.length).toBeLessThanOrEqual(UDP_LIMIT);
    expect(cef.toString('utf8')).toContain('cs6=path cut');
  });
});

describe(`OCSF ${OCSF_VERSION}`, () => {
  const cases: Array<[string, Partial<AuditLine>, number]> = [
    ['a request', {}, 600302],
    ['a POST', { method: 'POST' }, 600301],
    ['a refusal before the path', { decision: 'deny', code: 'rate_limited' as never, path: null, status: 429 }, 600302],
    ['a write-ahead line', { phase: 'sent', status: null }, 600302],
    ['an odd method', { method: 'PROPFIND' }, 600399],
    [
      'an admin change',
      { decision: 'admin', method: null, path: null, status: null, agent: null, grant: null, client: 'cli', action: 'grants.create', actor: 'me@host' },
      600301,
    ],
    ['a reload by signal', { decision: 'admin', method: null, path: null, status: null, agent: null, client: 'SIGHUP', action: 'reload' }, 600303],
    ['a tunnel', { decision: 'tunnel', method: 'CONNECT', path: null, status: null, grant: null }, 400102],
    ['a refused CONNECT', { decision: 'deny', code: 'host_not_allowed' as never, method: 'CONNECT', path: null, status: 403 }, 400105],
    ['no agent, no client', { agent: null, client: '' }, 600302],
  ];
  for (const [name, over, typeUid] of cases) {
    it(`${name} carries every attribute its class requires`, () => {
      const event = toOcsf(exportedLine(line(over)), '1.0.0');
      expect(ocsfProblems(event)).toEqual([]);
      expect(event['type_uid']).toBe(typeUid);
      expect((event['metadata'] as { version: string }).version).toBe('1.2.0');
    });
  }

  it('the check itself fails an event missing what the class requires', () => {
    const event = toOcsf(exportedLine(line()), '1.0.0');
    delete event['src_endpoint'];
    (event['api'] as Record<string, unknown>)['operation'] = undefined;
    event['type_uid'] = 1;
    expect(ocsfProblems(event)).toEqual(
      expect.arrayContaining(['missing src_endpoint (required by class 6003)', 'api.operation missing', 'type_uid is not class_uid * 100 + activity_id']),
    );
  });
});

describe('the new fields under attack: a signal, policy and approver crafted to break the framing', () => {
  // Overlong UTF-8 (C0 AF for "/") as it comes off disk: decoding replaces it, it is never re-emitted.
  const OVERLONG = Buffer.from([0xc0, 0xaf, 0xe0, 0x80, 0xaf]).toString('utf8');
  const why = `x\ny\r|z=w]v"u\\t\u0000s\u2029${OVERLONG}`;
  const hostile = line({
    path: HOSTILE,
    signal: [
      { name: 'burst', why },
      { name: 'new_host', why: 'host a]b never called' },
    ],
    policy: `sha256:${'d'.repeat(64)}`,
    policy_mode: 'warn',
    approval: { id: 'ap|1]', outcome: 'approved_once', by: 'eve\n<13>1 forged' },
  } as Partial<AuditLine>);
  const fatal = new TextDecoder('utf-8', { fatal: true });

  it('CEF: names in flexString1, whys in msg, one record, every = and \\ escaped, no raw control', () => {
    for (const wire of ['stream', 'datagram'] as const) {
      const bytes = encodeLine(hostile, 'cef', wire, '1.0.0');
      const text = fatal.decode(bytes);
      expect(/[\n\r\0\u2028\u2029]/.test(text)).toBe(false);
      expect(text).toContain('flexString1Label=signal flexString1=burst,new_host ');
      expect(text).toContain(`flexString2Label=policy flexString2=sha256:${'d'.repeat(64)}`);
      const msg = /msg=([\s\S]*?) flexString2Label=/.exec(text)?.[1] ?? '';
      expect(msg).not.toMatch(/(^|[^\\])(\\\\)*=/);
      expect(msg).toContain('burst: x\\ny\\r|z\\=w]v"u\\\\t\ufffds\ufffd');
      expect(text).toContain('by eve\\n<13>1 forged');
      // The header is the first seven unescaped pipes (a pipe in the extension needs no escape).
      const cef = text.slice(text.indexOf('CEF:0'));
      expect(cef.split(/(?<!\\)\|/).slice(0, 7)).toEqual(['CEF:0', 'keyway', 'keyway', '1.0.0', 'inject', 'request forwarded with a credential', '3']);
    }
  });

  it('syslog: signal and signal_why stay inside the one SD element', () => {
    for (const wire of ['stream', 'datagram'] as const) {
      const text = fatal.decode(encodeLine(hostile, 'syslog', wire, '1.0.0'));
      expect(/[\n\r\0\u2028\u2029]/.test(text)).toBe(false);
      const body = wire === 'stream' ? text.slice(text.indexOf(' ') + 1) : text;
      const sd = /^<\d+>1 \S+ \S+ keyway - inject \[keyway@32473 ((?:[^\]"\\]|"(?:[^"\\]|\\.)*")*)\] /.exec(body);
      expect(sd, body).not.toBeNull();
      expect(sd![1]).toContain('signal="burst,new_host"');
      expect(sd![1]).toContain('signal_why="burst: x\ufffdy\ufffd|z=w\\]v\\"u\\\\t\ufffds\ufffd');
      expect(sd![1]).toContain('new_host: host a\\]b never called"');
      expect(sd![1]).toContain('approval_id="ap|1\\]" approval_by="eve\ufffd<13>1 forged"');
      expect(sd![1]).toContain('policy_mode="warn"');
    }
  });

  it('OCSF: under unmapped, as JSON (one event, valid, required attributes kept)', () => {
    const event = JSON.parse(fatal.decode(encodeLine(hostile, 'ocsf', 'https', '1.0.0'))) as Record<string, unknown>;
    expect(ocsfProblems(event)).toEqual([]);
    expect(event['unmapped']).toMatchObject({
      signal: [{ name: 'burst', why: expect.stringContaining('x\ny') }, { name: 'new_host' }],
      policy: `sha256:${'d'.repeat(64)}`,
      policy_mode: 'warn',
      approval_by: 'eve\n<13>1 forged',
    });
  });

  it('a line with no signal carries none of the keys', () => {
    const cef = toCef(exportedLine(line()), '1.0.0', 8192);
    expect(cef).not.toMatch(/flexString|msg=/);
    expect(toSyslog(exportedLine(line()), 8192)).not.toMatch(/signal|policy/);
  });
});
