import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Import circles (issue 61). A circle is a set of files that all reach each other through imports:
// none of them can be read, tested or moved alone. Inside src/credentials/ a circle may hold at
// most 8 files, type-only imports counted (a type is part of the contract a reader must hold in
// mind); anywhere in src/, a circle that holds at run time (value imports: what ESM evaluates
// together, in an order it picks) may hold at most 3, and so may any circle, type-only imports
// counted (issue 87: the driver's contract, src/proxy/contract.ts, opened the 8-file one the
// connection's views closed in src/proxy/).

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const CREDENTIALS = `${join(SRC, 'credentials')}/`;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

interface Edge {
  readonly target: string;
  /** `import type`, `export type`, or braces naming only `type X`: erased when compiled. */
  readonly typeOnly: boolean;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(type\s+)?([^'"`;]*?)\bfrom\s*'(\.[^']*)'|\bimport\s*\(\s*'(\.[^']*)'\s*\)|(?:^|\n)\s*import\s*'(\.[^']*)'/g;

function edgesOf(file: string): Edge[] {
  const edges: Edge[] = [];
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const spec = m[3] ?? m[4] ?? m[5]!;
    let typeOnly = m[1] !== undefined;
    const clause = m[2] ?? '';
    const braces = /^\{([^}]*)\}\s*$/.exec(clause.trim());
    if (!typeOnly && braces) {
      const names = braces[1]!
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean);
      typeOnly = names.length > 0 && names.every((n) => n.startsWith('type '));
    }
    let target = resolve(dirname(file), spec);
    if (!target.endsWith('.ts')) target = existsSync(`${target}.ts`) ? `${target}.ts` : join(target, 'index.ts');
    edges.push({ target, typeOnly });
  }
  return edges;
}

/** Strongly connected components of more than one file (Tarjan), largest first. */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const circle: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      circle.push(relative(SRC, w));
    } while (w !== v);
    if (circle.length > 1) found.push(circle.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found.sort((a, b) => b.length - a.length);
}

function graphOf(files: readonly string[], keep: (edge: Edge) => boolean): Map<string, string[]> {
  return new Map(
    files.map((file) => [
      file,
      edgesOf(file)
        .filter(keep)
        .map((edge) => edge.target),
    ]),
  );
}

describe('import circles (issue 61)', () => {
  const files = sourceFiles(SRC);

  it('inside src/credentials/, no circle of more than 8 files, type-only imports counted', () => {
    const inside = files.filter((f) => f.startsWith(CREDENTIALS));
    const found = circles(graphOf(inside, (edge) => edge.target.startsWith(CREDENTIALS)));
    expect(found.filter((c) => c.length > 8)).toEqual([]);
  });

  it('anywhere in src/, no circle that holds at run time of more than 3 files', () => {
    const found = circles(graphOf(files, (edge) => !edge.typeOnly));
    expect(found.filter((c) => c.length > 3)).toEqual([]);
  });

  it('anywhere in src/, no circle of more than 3 files, type-only imports counted', () => {
    const found = circles(graphOf(files, () => true));
    expect(found.filter((c) => c.length > 3)).toEqual([]);
  });

  it('inside src/audit/, no circle at all: the shape of a line, its format and its bounds stand apart (issue 87)', () => {
    const audit = `${join(SRC, 'audit')}/`;
    const inside = files.filter((f) => f.startsWith(audit));
    expect(circles(graphOf(inside, (edge) => edge.target.startsWith(audit)))).toEqual([]);
  });

  it('the reader sees a circle: two files importing each other are found', () => {
    const a = join(SRC, 'a.ts');
    const b = join(SRC, 'b.ts');
    expect(
      circles(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ),
    ).toEqual([['a.ts', 'b.ts']]);
  });
});
