// Reads back the Helm templates scripts/chart/template-model.mjs writes: only the subset it uses
// (`.Values` paths, `.Release.Name`, `quote`, `toYaml`, `nindent`, `if`, `with`, `end`, `fail`,
// `eq`, `ne`, `lt`, `and`, `or`, `not`, `has`, `list`, `empty`, `kindOf`, `float64`, `int64`, number
// literals, comments), with Go templates' whitespace trimming. Not a
// Helm: anything outside that subset throws, so a template that strays from it fails its test
// instead of passing unread. It exists because no helm binary can be had here (docs/install.md).
import { stringify } from 'yaml';

type Scope = { values: unknown; release: string; dot: unknown };

/** Text and actions, with `{{-` and `-}}` having trimmed the whitespace beside them. */
function tokens(template: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  const re = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    let text = template.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1] === '-') text = text.replace(/\s+$/, '');
    out.push({ text }, { action: m[2]! });
    trimNext = m[3] === '-';
    last = re.lastIndex;
  }
  let tail = template.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  out.push({ text: tail });
  return out;
}

function path(scope: Scope, expr: string): unknown {
  if (expr === '.') return scope.dot;
  if (expr === '.Release.Name') return scope.release;
  if (!expr.startsWith('.Values.')) throw new Error(`helm-subset: not read here: ${expr}`);
  let at: unknown = scope.values;
  for (const key of expr.slice('.Values.'.length).split('.')) {
    if (at === null || typeof at !== 'object' || !(key in at)) throw new Error(`helm-subset: no value at ${expr}`);
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** An expression's terms: parenthesised groups (nested to any depth), quoted strings, words. */
function terms(source: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    let j = i;
    if (c === '(') {
      let depth = 0;
      let quoted = false;
      for (; j < source.length; j++) {
        const d = source[j]!;
        if (quoted) {
          if (d === '\\') j++;
          else if (d === '"') quoted = false;
        } else if (d === '"') quoted = true;
        else if (d === '(') depth++;
        else if (d === ')' && --depth === 0) break;
      }
      if (depth !== 0) throw new Error(`helm-subset: unbalanced parentheses: ${source}`);
      j++;
    } else if (c === '"') {
      for (j = i + 1; j < source.length && source[j] !== '"'; j++) if (source[j] === '\\') j++;
      j++;
    } else {
      while (j < source.length && !/[\s()]/.test(source[j]!)) j++;
    }
    out.push(source.slice(i, j));
    i = j;
  }
  return out;
}

/** One expression: a term or a call, with parenthesised sub-expressions. */
function evaluate(scope: Scope, source: string): unknown {
  const parts = terms(source);
  const term = (t: string): unknown => {
    if (t.startsWith('(')) return evaluate(scope, t.slice(1, -1));
    if (t.startsWith('"')) return JSON.parse(t) as string;
    if (t.startsWith('.')) return path(scope, t);
    if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
    throw new Error(`helm-subset: not read here: ${t}`);
  };
  const [head, ...args] = parts;
  if (head === undefined) throw new Error('helm-subset: an empty expression');
  const a = () => args.map(term);
  const empty = (x: unknown) => x === null || x === undefined || x === '' || x === false || (typeof x === 'object' && Object.keys(x).length === 0);
  switch (head) {
    case 'eq':
      return a()[0] === a()[1];
    case 'ne':
      return a()[0] !== a()[1];
    case 'lt':
      return (a()[0] as number) < (a()[1] as number);
    case 'and':
      return a().every((x) => !empty(x));
    case 'or':
      return a().some((x) => !empty(x));
    case 'kindOf':
      // A values file's numbers are float64 to helm (they pass through JSON).
      return kindOf(a()[0]);
    case 'float64':
    case 'int64': {
      // sprig's conversions: a number or a numeric string converted, anything else 0.
      const x = a()[0];
      const n = typeof x === 'number' ? x : typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x)) ? Number(x) : 0;
      return head === 'int64' ? Math.trunc(n) : n;
    }
    case 'not':
      return empty(a()[0]);
    case 'has':
      return (a()[1] as unknown[]).includes(a()[0]);
    case 'list':
      return a();
    case 'empty':
      return empty(a()[0]);
    default:
      if (args.length > 0) throw new Error(`helm-subset: not read here: ${source}`);
      return term(head);
  }
}

function kindOf(x: unknown): string {
  if (x === null || x === undefined) return 'invalid';
  if (typeof x === 'number') return 'float64';
  if (typeof x === 'string') return 'string';
  if (typeof x === 'boolean') return 'bool';
  return Array.isArray(x) ? 'slice' : 'map';
}

/** One output action: `EXPR`, `EXPR | quote`, `toYaml EXPR | nindent N`. */
function output(scope: Scope, action: string): string {
  const quoted = /^(\S+) \| quote$/.exec(action);
  if (quoted) return JSON.stringify(String(path(scope, quoted[1]!)));
  const yaml = /^toYaml (\S+) \| nindent (\d+)$/.exec(action);
  if (yaml) {
    const pad = ' '.repeat(Number(yaml[2]));
    const text = stringify(path(scope, yaml[1]!), { lineWidth: 0 }).replace(/\n$/, '');
    return `\n${text
      .split('\n')
      .map((l) => pad + l)
      .join('\n')}`;
  }
  if (/^\.[\w.]+$/.test(action)) return String(path(scope, action));
  throw new Error(`helm-subset: not read here: {{ ${action} }}`);
}

/** The template's output for these values and release name; `fail` throws its message. */
export function renderSubset(template: string, values: unknown, release: string): string {
  const list = tokens(template);
  let i = 0;
  const block = (scope: Scope, live: boolean, nested: boolean): string => {
    let out = '';
    while (i < list.length) {
      const t = list[i++]!;
      if ('text' in t) {
        if (live) out += t.text;
        continue;
      }
      const action = t.action;
      if (action.startsWith('/*')) continue;
      if (action === 'end') {
        if (!nested) throw new Error('helm-subset: an `end` without its `if` or `with`');
        return out;
      }
      const ifMatch = /^if (.+)$/.exec(action);
      const withMatch = /^with (.+)$/.exec(action);
      if (ifMatch || withMatch) {
        const value = live ? evaluate(scope, (ifMatch ?? withMatch)![1]!) : false;
        const holds =
          live && !(value === null || value === undefined || value === false || value === '' || (typeof value === 'object' && Object.keys(value).length === 0));
        const inner = block(withMatch ? { ...scope, dot: value } : scope, holds, true);
        if (holds) out += inner;
        continue;
      }
      const fail = /^fail (".*")$/.exec(action);
      if (fail) {
        if (live) throw new Error(`helm-subset fail: ${JSON.parse(fail[1]!) as string}`);
        continue;
      }
      if (live) out += output(scope, action);
    }
    if (nested) throw new Error('helm-subset: an `if` or `with` without its `end`');
    return out;
  };
  return block({ values, release, dot: values }, true, false);
}
