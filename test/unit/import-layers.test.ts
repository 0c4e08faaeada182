import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GRANT_TYPES } from '../../src/config/ids.ts';
import { GRANT_TYPE_FIELDS } from '../../src/credentials/types/fields.ts';

// Imports point one way: cli -> app -> {admin, proxy, oauth} -> egress -> {policy, credentials,
// tls, audit} -> {config, errors}. Each module of src/ has a layer; a file may import its own module
// and any module of a lower layer, never one above. Inside the middle layer, credentials may use
// policy's decisions but policy never imports credentials (policy works on its own small input
// types), so policy sits one step lower. oauth sits half a step below admin, whose OAuth routes run
// its flows. Nothing imports cli.

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Module -> layer; a module is src/<dir> or a file at the top of src/, or one in a room (ROOMS). Higher imports lower. */
const LAYERS: Record<string, number> = {
  errors: 0,
  'deep-freeze.ts': 0,
  'version.ts': 0,
  'builtins.ts': 0, // Node's modules loaded by require or at first use
  'iso-time.ts': 0,
  'edit-distance.ts': 0, // "did you mean": the command line's guesses and the config's measure alike
  files: 0,
  net: 0,
  process: 0, // one-shot child processes for work whose memory must not stay in the proxy
  // The app log (pino with its redaction, and its terminal rendering): a leaf any layer may log through,
  // apart from the audit trail (audit/), which is evidence, not diagnostics.
  log: 0,
  config: 1,
  // MCP's JSON-RPC reading and rule conditions: pure, below the policy that uses them.
  mcp: 1.5,
  // Model spend is one room of three modules (see ROOMS). Its core: usage read from vendors' answers,
  // prices, budgets' arithmetic, the ledger's records and contract (pure).
  'spend/core': 1.6,
  // A metered request's body read strictly as it goes up, and the include_usage option written into it (pure).
  'spend/request': 1.7,
  'paths.ts': 2,
  'running-proxy.ts': 2,
  policy: 2,
  // Request and byte quotas per UTC day: the store records and the ledger that reserves them in blocks
  // (it writes through the store's update, which it takes as a parameter, not by importing credentials).
  quotas: 2.2,
  // Anomaly holds are one room of two modules (see ROOMS). Its core: path classes, the burst baseline,
  // hours, the per-agent record and the signals judged against it (pure; reads the config's types).
  'anomaly/core': 2.3,
  // Login capture is one room of two modules (see ROOMS); its type stays a type's folder
  // (credentials/types/login_capture/). Its core, below credentials, whose grants compile its settings
  // and whose listing shows its logins: placeholders, settings, the judge of a login host's answers,
  // the swap, captured tokens as records (pure).
  'capture/core': 2.5,
  // Delegation's pure core: what a child may be at minting, and its chain resolved against its parent
  // as it stands (credentials/agents.ts builds the agent table through it). Below credentials.
  delegation: 2.6,
  credentials: 3,
  tls: 3,
  audit: 3,
  // The policy proofs (keyway policy check | lint | test | diff, /api/policy): the policy's own parts
  // (policy/) asked about requests not sent or read back from the audit log, which sits above policy.
  proofs: 3.2,
  // Spend's ledger: the counts kept in the store (and the journal beside it), above the store it writes.
  'spend/ledger': 3.1,
  // The agents' histories kept in the store (it writes through the store's update, taken as a parameter).
  'anomaly/book': 3.1,
  // Login capture's records kept in the store (the book the proxy saves and resolves them with, pruning, orphans).
  'capture/store': 3.1,
  // audit.export: the audit file's lines, from a cursor of their own, sent on as OCSF, CEF or syslog
  // (its own sockets to the receivers: not egress's upstream client). Reads audit's files.
  'audit-export': 3.4,
  // The outbound client: lookups under the egress policy, the undici agents, keyway listeners refused as destinations.
  egress: 3.5,
  // Identity tokens (config identities:): issuers' keys fetched, tokens checked and mapped to agents.
  'identity-tokens': 3.6,
  // Opening a home: its config, key, store and audit keys, for the proxy and the command line alike.
  'open-home.ts': 4,
  // What on disk says a home was used before (open-home.ts refuses to start fresh over it).
  'home-history.ts': 3.9,
  // Observability is one room of three modules (see ROOMS), layered as they were when each stood at the
  // top of src/: none imports another today, and the OTLP export stays the one that may read the others.
  'observability/counting-audit.ts': 4, // requests counted for status and the overview
  'observability/metrics': 4, // reads audit's and credentials' types; proxy feeds it, admin serves it
  // Decisions exported over OTLP: reads audit's types, fed where a line is committed.
  'observability/otlp.ts': 4.1,
  // Requests rules send to a person: the desk the proxy asks, the CLI and the admin API answer through.
  approvals: 4.2,
  // The connect flows: `keyway connect` and the admin API's OAuth routes run the same ones.
  oauth: 4.5,
  proxy: 5,
  // The operations the CLI and the admin API share (grants, secrets, agents, leases, refresh, revoke).
  operations: 5.2,
  // Coding agents' profiles are one room of two modules (see ROOMS; "agent" elsewhere is the caller
  // with a key). `keyway connect AGENT`: each coding agent's table, and its grant made through operations.
  'profiles/connect': 5.3,
  admin: 5.4,
  // The warm-up before keyway serves (issue 92): a throwaway keyway on loopback, started through the
  // startKeyway its caller (app/workers/, cli's start) hands it, so it sits below the root it warms.
  'warm-up': 5.5,
  // The composition root: builds every part once, owns start, stop and reload (live-config.ts is its
  // reload half; nothing below imports it, admin's reload route takes a callback).
  app: 6,
  // keyway run --contain: a keyway of its own (app) for a command in its namespaces.
  contain: 6.5,
  // A coding agent's profile as `keyway run` opens it: what it needs to run (its state checked as --contain checks a writable path).
  'profiles/run': 6.8,
  // keyway service: keyway as a system user of its own (the accounts, the home, the unit).
  service: 6.6,
  cli: 7,
};

/**
 * A credential type's folder (credentials/types/<type>/) is one unit for its reader and two layers
 * for its imports: its fields (fields.ts, fields/) are the config's, since the config's grant schema
 * is made of every type's; the rest (its kind, its issuing) is credentials'. So are the registry of
 * fields and the parts every type's fields share, at the top of credentials/types/.
 */
const TYPES = join(SRC, 'credentials/types');

/** Folders of src/ that group modules for their reader: each entry in one is a module of its own, with its own layer. */
const ROOMS = ['observability', 'spend', 'capture', 'profiles', 'anomaly'];
const CONFIG_PART = /^(?:fields\.ts|type-fields\.ts|values\.ts|[a-z-]+-fields\.ts|[a-z0-9_]+\/fields\.ts|[a-z0-9_]+\/fields\/.*)$/;

function moduleOf(file: string): string {
  const inTypes = relative(TYPES, file);
  if (!inTypes.startsWith('..') && CONFIG_PART.test(inTypes)) return 'config';
  const [first = '', second] = relative(SRC, file).split('/');
  return ROOMS.includes(first) && second !== undefined ? `${first}/${second}` : first;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    // A test beside its module (src/**/X.test.ts) imports test helpers: not a source file.
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Relative specifiers of every static import, re-export and dynamic import() in a file. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(
    /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s*'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)|(?:^|\n)\s*import\s*'([^']+)'/g,
  )) {
    const spec = match[1] ?? match[2] ?? match[3];
    if (spec?.startsWith('.')) found.push(spec);
  }
  return found;
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = moduleOf(file);
    const fromLayer = LAYERS[from];
    if (fromLayer === undefined) {
      out.push(`${relative(SRC, file)}: module "${from}" has no layer in this test`);
      continue;
    }
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = moduleOf(resolve(dirname(file), spec));
      if (to === from) continue;
      const toLayer = LAYERS[to];
      if (toLayer === undefined || toLayer >= fromLayer)
        out.push(`${relative(SRC, file)} (${from}, layer ${fromLayer}) imports ${spec} (${to}, layer ${toLayer ?? '?'})`);
    }
  }
  return out;
}

/**
 * Inside src/proxy/: the request path's rooms point one way too. The leak guard, agent
 * identification and the WebSocket frame readers (websocket-frames/: what the relay and the socket
 * taps both read frames with) are self-contained; the stages are run by the drivers (driver/: the listener, the
 * connection, the inner servers, the exchange, the forward; and WebSocket) and never reach back to
 * them. The driver's contract (contract.ts) is the bottom: it names only leaves, never the driver.
 */
const PROXY = join(SRC, 'proxy');
const PROXY_ROOMS: Record<string, { mayImport: (target: string) => boolean }> = {
  'contract.ts': { mayImport: (target) => ['agent-load.ts', 'leak-guard/held.ts'].includes(target) },
  'leak-guard': { mayImport: (target) => target.startsWith('leak-guard/') },
  identify: { mayImport: (target) => target.startsWith('identify/') },
  'websocket-frames': { mayImport: (target) => target.startsWith('websocket-frames/') },
  stages: {
    mayImport: (target) => !target.startsWith('driver/') && !target.startsWith('websocket/') && !target.startsWith('http1/') && target !== 'http2/server.ts',
  },
};

function proxyRoomViolations(): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(PROXY)) {
    const room = relative(PROXY, file).split('/')[0] ?? '';
    const rule = PROXY_ROOMS[room];
    if (!rule) continue;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = relative(PROXY, resolve(dirname(file), spec));
      if (target.startsWith('..')) continue; // outside src/proxy/: the layers above decide
      if (!rule.mayImport(target)) out.push(`proxy/${relative(PROXY, file)} imports proxy/${target}`);
    }
  }
  return out;
}

/**
 * A credential type is one folder (credentials/types/<type>/): its fields, its kind, its issuing,
 * its tests. A type's folder stands alone: it may use the parts shared at the top of
 * credentials/types/ and the rest of credentials, never another type's folder; and src/proxy/
 * reaches no type's folder at all (it asks the grant, which its kind compiled).
 */
function typeFolderViolations(): string[] {
  const folders = readdirSync(TYPES).filter((name) => statSync(join(TYPES, name)).isDirectory());
  const folderOf = (file: string): string | undefined => {
    const inTypes = relative(TYPES, file);
    const [first] = inTypes.split('/');
    return !inTypes.startsWith('..') && first !== undefined && folders.includes(first) ? first : undefined;
  };
  const out: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    const inProxy = file.startsWith(`${PROXY}/`);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = folderOf(resolve(dirname(file), spec));
      if (to === undefined || to === from) continue;
      if (from !== undefined) out.push(`${relative(SRC, file)} imports another type's folder (${to})`);
      else if (inProxy) out.push(`${relative(SRC, file)} reaches into the ${to} type's folder`);
    }
  }
  return out;
}

/**
 * A feature's room is imported in src/proxy/ only by the stages (issue 87): the driver and its
 * contract reach a feature through a view (contract.ts, stages/views.ts) or a stage.
 */
const FEATURE_ROOMS = ['spend', 'quotas', 'capture', 'anomaly'];

function roomImportsInProxy(withStages = false): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(PROXY)) {
    const inProxy = relative(PROXY, file);
    if (inProxy.startsWith('stages/') && !withStages) continue;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const [room] = relative(SRC, resolve(dirname(file), spec)).split('/');
      if (room !== undefined && FEATURE_ROOMS.includes(room)) out.push(inProxy);
    }
  }
  return [...new Set(out)].sort();
}

describe('import layering', () => {
  it('every import in src/ points down the layers', () => {
    expect(violations()).toEqual([]);
  });

  it('inside src/proxy/, the leak guard and identify stand alone and the stages never import what runs them', () => {
    expect(proxyRoomViolations()).toEqual([]);
    // The rule bites: a stage importing the exchange would be named.
    expect(PROXY_ROOMS['stages']?.mayImport('driver/exchange.ts')).toBe(false);
    expect(PROXY_ROOMS['contract.ts']?.mayImport('stages/request.ts')).toBe(false);
    expect(PROXY_ROOMS['leak-guard']?.mayImport('stages/index.ts')).toBe(false);
    expect(PROXY_ROOMS['websocket-frames']?.mayImport('websocket/forwarder.ts')).toBe(false);
  });

  it("outside the stages, no file of src/proxy/ imports a feature's room (spend, quotas, capture)", () => {
    expect(roomImportsInProxy()).toEqual([]);
    // The scan bites: it finds the stages that do import rooms.
    expect(roomImportsInProxy(true)).toEqual(expect.arrayContaining(['stages/model-socket.ts', 'stages/capture-guard.ts']));
  });

  it('a stage reads the runtime through the view it needs (decisions, issuing, records, transport), never whole', () => {
    const whole = sourceFiles(join(PROXY, 'stages')).filter((file) => /\.runtime\b/.test(readFileSync(file, 'utf8')));
    expect(whole.map((file) => relative(SRC, file))).toEqual([]);
  });

  it("a credential type's folder stands alone, and the proxy never reaches into one", () => {
    expect(typeFolderViolations()).toEqual([]);
    // Every registered type has its folder, with its fields and its kind.
    for (const type of GRANT_TYPES) {
      expect(statSync(join(TYPES, type, 'fields.ts')).isFile(), type).toBe(true);
      expect(statSync(join(TYPES, type, 'kind.ts')).isFile(), type).toBe(true);
    }
  });

  it("src/proxy/ reads no type's own settings or keys: the grant's settings are its kind's", () => {
    const reads = sourceFiles(PROXY).filter((file) => /\.settings\b/.test(readFileSync(file, 'utf8')));
    expect(reads.map((file) => relative(SRC, file))).toEqual([]);
    // A type's own config keys (region, api_url, sign, capture, token_endpoint, …) read off a grant.
    const keys = [...new Set(GRANT_TYPES.flatMap((type) => Object.keys(GRANT_TYPE_FIELDS[type].shape)))];
    expect(keys).toContain('capture');
    const member = new RegExp(`\\b(?:grant|g)\\??\\.(?:${keys.join('|')})\\b`);
    expect(member.test('if (grant.capture === undefined)')).toBe(true);
    const named = sourceFiles(PROXY).filter((file) => member.test(readFileSync(file, 'utf8')));
    expect(named.map((file) => relative(SRC, file))).toEqual([]);
  });

  it('src/proxy/ names no credential type: it asks the grant whether it injects or signs (its kind, its signer)', () => {
    const named = sourceFiles(PROXY).flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      // A grant's type compared with a name (`grant.type !== 'oauth2'`); a credential's own kind (`credential.kind === 'basic'`, its wire form) is not one.
      return GRANT_TYPES.filter((type) => new RegExp(`\\btype\\b[^\\n;]*['"]${type}['"]`).test(text)).map((type) => `${relative(SRC, file)}: ${type}`);
    });
    expect(named).toEqual([]);
  });

  it('the scanner sees the import forms used in src/', () => {
    const text =
      "import a from '../x.ts';\nimport type { B } from './b.ts';\nexport { c } from '../c.ts';\nexport * from './d.ts';\nconst e = await import('../e.ts');\nimport './f.ts';\nimport {\n  g,\n} from '../g.ts';";
    expect(importsOf(text)).toEqual(
      ['../x.ts', './b.ts', '../c.ts', './d.ts', '../g.ts', '../e.ts', './f.ts'].sort((a, b) => text.indexOf(a) - text.indexOf(b)),
    );
  });
});
