import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

// What a start loads is what it costs (issue 62, docs/perf/startup.md): `keyway run` and `keyway
// run --contain` pay for every module on their path, each time an agent runs a tool. These
// packages are loaded where they are used, never on a start: zod and yaml by the config loader
// and a profile's loader, prom-client (with the OpenTelemetry API) at a keyway's first scrape.
// A new static import that brings one back fails here, naming the chain that does.

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Imports the entries in a Node of its own; the packages they loaded, and for each the chain of first importers that reached it. */
function packagesLoaded(...entries: string[]): Map<string, string> {
  const script = `
    import { registerHooks } from 'node:module';
    const parent = new Map();
    registerHooks({ resolve(s, c, next) { const r = next(s, c); if (!parent.has(r.url)) parent.set(r.url, c.parentURL); return r; } });
    for (const entry of ${JSON.stringify(entries.map((e) => pathToFileURL(e).href))}) await import(entry);
    const out = {};
    for (const url of parent.keys()) {
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(url);
      if (m === null || out[m[1]] !== undefined) continue;
      const chain = [];
      for (let u = url; u !== undefined && u.startsWith('file:'); u = parent.get(u)) chain.unshift(u.replace(/^.*\\/(src|node_modules)\\//, ''));
      out[m[1]] = chain.join(' -> ');
    }
    process.stdout.write(JSON.stringify(out));
    process.exit(0);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 50_000 });
  expect(child.status, child.stderr).toBe(0);
  return new Map(Object.entries(JSON.parse(child.stdout) as Record<string, string>));
}

const offTheStart = (loaded: Map<string, string>, packages: readonly string[]) => packages.filter((p) => loaded.has(p)).map((p) => `${p}: ${loaded.get(p)}`);

describe('what a start loads', () => {
  it('a plain `keyway run` (the command line, its command and the door it asks) loads no config or profile schema', () => {
    const loaded = packagesLoaded(`${SRC}/cli/index.ts`, `${SRC}/cli/commands/env.ts`, `${SRC}/cli/door-view.ts`);
    expect(offTheStart(loaded, ['zod', 'yaml'])).toEqual([]);
  });

  it("a keyway's own start (app/index.ts: what `keyway run --contain` loads for its keyway) loads no schema", () => {
    const loaded = packagesLoaded(`${SRC}/app/index.ts`);
    // The case nobody listed: the proxy's modules are there, so a wrong entry cannot pass empty.
    expect(loaded.has('undici')).toBe(true);
    expect(offTheStart(loaded, ['zod', 'yaml', 'prom-client', '@opentelemetry/api'])).toEqual([]);
  });
});
