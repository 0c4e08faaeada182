import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type OutputChunk, rolldown } from 'rolldown';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOptions, ENTRIES } from '../../scripts/bundle.mjs';

// dist/ is a bundle of src/ (scripts/bundle.mjs, issue 62). What it must keep from src/: a lazy
// import() stays lazy (the bundle loads no package on a path where src/ does not: one file, or a
// chunk merged too far, would load zod, yaml and prom-client on every start again), every process
// and worker entry sits at its own path, and a module's own URL still finds what it names. The
// bundle is made here in memory from the same options as the build, so src/ is what is judged.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Graph {
  /** Each of src/'s modules: what it imports statically and lazily (packages by their specifier). */
  modules: Map<string, { imports: readonly string[]; lazy: readonly string[] }>;
  chunks: OutputChunk[];
}

async function bundleInMemory(root: string): Promise<Graph> {
  const { input, output } = bundleOptions(root);
  const modules: Graph['modules'] = new Map();
  const record = {
    name: 'record-graph',
    moduleParsed: (m: { id: string; importedIds: readonly string[]; dynamicallyImportedIds: readonly string[] }) =>
      void modules.set(m.id, { imports: m.importedIds, lazy: m.dynamicallyImportedIds }),
  };
  const bundle = await rolldown({ ...input, plugins: [...input.plugins, record] });
  try {
    const { output: files } = await bundle.generate(output);
    return { modules, chunks: files.filter((f): f is OutputChunk => f.type === 'chunk') };
  } finally {
    await bundle.close();
  }
}

/** A package's name from an import specifier (`undici/lib/x` -> undici); undefined for node:* and keyway's own files. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('/') || specifier.startsWith('node:') || specifier.startsWith('\0')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The packages loaded with `start`, following static imports only, in a graph of `next`. */
function packagesReached(start: string, next: (node: string) => readonly string[] | undefined): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const node = todo.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    const edges = next(node);
    if (edges === undefined) {
      const name = packageOf(node);
      if (name !== undefined) packages.add(name);
    } else todo.push(...edges);
  }
  return packages;
}

describe("the bundle of keyway's own modules (dist/)", () => {
  let graph: Graph;
  const chunkWith = (module: string) => graph.chunks.find((c) => c.moduleIds.includes(module));
  const inSource = (module: string) => packagesReached(module, (m) => graph.modules.get(m)?.imports);
  const byFile = () => new Map(graph.chunks.map((c) => [c.fileName, c]));
  const inBundle = (module: string) => {
    const files = byFile();
    const chunk = chunkWith(module);
    expect(chunk, `${module} is in no chunk`).toBeDefined();
    return packagesReached(chunk!.fileName, (f) => files.get(f)?.imports);
  };

  beforeAll(async () => {
    graph = await bundleInMemory(ROOT);
  });

  it('puts each process and worker entry at its own path, the rest in chunks/', () => {
    const names = graph.chunks.map((c) => c.fileName);
    for (const entry of ENTRIES) expect(names).toContain(`${entry}.js`);
    expect(names.filter((n) => !ENTRIES.includes(n.replace(/\.js$/, '')) && !n.startsWith('chunks/'))).toEqual([]);
  });

  it('loads no package with an entry or a lazily imported module that its source does not load', () => {
    const lazy = new Set([...graph.modules.values()].flatMap((m) => m.lazy.filter((id) => graph.modules.has(id))));
    const entries = ENTRIES.map((e) => join(ROOT, 'src', `${e}.ts`));
    // The case nobody listed: an empty graph would pass everything.
    expect(lazy.size).toBeGreaterThan(20);
    const extra: string[] = [];
    for (const module of [...entries, ...lazy]) {
      const source = inSource(module);
      const more = [...inBundle(module)].filter((p) => !source.has(p));
      if (more.length > 0) extra.push(`${module.slice(ROOT.length + 1)} (${chunkWith(module)!.fileName}): ${more.join(', ')}`);
    }
    expect(extra).toEqual([]);
  });

  it("a keyway's start (app/index.ts's chunk: what `keyway run --contain` loads for its keyway) loads no schema", () => {
    const loaded = inBundle(join(ROOT, 'src', 'app', 'index.ts'));
    expect(loaded.has('pino')).toBe(true);
    expect(['zod', 'yaml', 'prom-client', '@opentelemetry/api'].filter((p) => loaded.has(p))).toEqual([]);
    // AWS's signer is for presigned URLs only (aws_sigv4/signing/sign.ts loads it at the first).
    expect(['@smithy/signature-v4', '@smithy/hash-node'].filter((p) => loaded.has(p))).toEqual([]);
    // forge makes the CA once (tls/ca-create.ts); a start with a CA reads it, and mints leaves, without it.
    expect(loaded.has('node-forge')).toBe(false);
  });

  it('writes every chunk in Latin-1 (V8 would hold a chunk with one wider character as two bytes a character)', () => {
    const wide = graph.chunks.filter((c) => /[\u0100-\uffff]/.test(c.code)).map((c) => c.fileName);
    expect(wide).toEqual([]);
    // Escaped, not dropped: the proxy's messages still say `…` where src/ does.
    expect(graph.chunks.some((c) => c.code.includes('\\u2026'))).toBe(true);
  });

  it("the `keyway` executable loads no package before it has checked the Node it runs on (an old Node fails in undici's import)", () => {
    expect([...inBundle(join(ROOT, 'src', 'cli', 'main.ts'))]).toEqual([]);
  });
});

describe("a module's own URL in the bundle", () => {
  const root = mkdtempSync(join(tmpdir(), 'keyway-bundle-'));
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };
  const build = async () => {
    const { input, output } = bundleOptions(root);
    const bundle = await rolldown(input);
    try {
      await bundle.write(output);
    } finally {
      await bundle.close();
    }
  };

  beforeAll(() => {
    write('package.json', '{"name":"fixture","version":"7.8.9","type":"module"}');
    write('tsconfig.json', '{}');
    // version.ts reads ../package.json from its own URL (as src/version.ts does); imported lazily by
    // two entries, its code goes to a chunk in another folder than its own.
    write(
      'src/version.ts',
      "import { readFileSync } from 'node:fs';\nexport const version = () => JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;\n",
    );
    write('src/cli/main.ts', "const { version } = await import('../version.ts');\nconsole.log(version());\n");
    write('src/contain/inside.ts', "const { version } = await import('../version.ts');\nconsole.log(version());\n");
    for (const entry of ENTRIES.filter((e) => e !== 'cli/main' && e !== 'contain/inside')) write(`src/${entry}.ts`, 'export {};\n');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('is the URL its file would have in an unbundled dist/, wherever its code lands', async () => {
    await build();
    for (const entry of ['cli/main', 'contain/inside']) {
      const run = spawnSync(process.execPath, [join(root, 'dist', `${entry}.js`)], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.stdout).toBe('7.8.9\n');
    }
  });

  it('is refused in a module not listed with what it reaches, and import.meta.dirname anywhere', async () => {
    write('src/elsewhere.ts', 'export const here = import.meta.url;\n');
    write('src/tls/bundle-child.ts', "import { here } from '../elsewhere.ts';\nconsole.log(here);\n");
    await expect(build()).rejects.toThrow(/elsewhere\.ts reads import\.meta\.url: say what it reaches in MODULE_URL_USERS/);
    write('src/tls/bundle-child.ts', 'export {};\n');
    write('src/version.ts', 'export const version = () => import.meta.dirname;\n');
    await expect(build()).rejects.toThrow(/version\.ts: import\.meta\.dirname is not handled by the bundle/);
  });
});
