// One description of a Kubernetes object, two outputs: the Helm template text (for helm) and the
// object rendered with given values (for deploy/helm/keyway/rendered/ and the schema checks). No helm
// binary can be had here and no maintained Go-template renderer is on npm, so the chart's templates
// and its rendered manifests are both written from this one source and cannot drift apart.
// A description is plain JSON (literals) with these nodes in it:
//   value('a.b')        .Values.a.b (a scalar inline; a map or list through toYaml)
//   name('-suffix')     the release's name with a suffix
//   text('x:', v, …)    a string made of literals and values
//   yamlOf(value(…))    a value as a YAML document in a string (a ConfigMap's file)
//   spread(value(…))    inside a list: the value's items appended (an empty list adds none)
// The template uses a fixed subset of Helm's language: `.Values` paths, `quote`, `toYaml`,
// `nindent`, `with`, `if eq`, `fail` (and validate.yaml's conditions, generate.mjs's CHECKS);
// test/unit/helm-chart.test.ts reads that subset back.
import { stringify } from 'yaml';

const NODE = Symbol('template node');

export const value = (path) => ({ [NODE]: 'value', path });
export const name = (suffix = '') => ({ [NODE]: 'name', suffix });
export const text = (...parts) => ({ [NODE]: 'text', parts });
export const yamlOf = (ref) => ({ [NODE]: 'yamlOf', ref });
export const spread = (ref) => ({ [NODE]: 'spread', ref });

const isNode = (x) => x !== null && typeof x === 'object' && NODE in x;

/** A path's value in `values`; a missing one throws (helm would print `<no value>`). */
export function lookup(values, path) {
  let at = values;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object' || !(key in at)) throw new Error(`chart: no value at .Values.${path}`);
    at = at[key];
  }
  return at;
}

/** The description with values in: plain JSON, as helm would render it. */
export function render(node, ctx) {
  if (isNode(node)) {
    switch (node[NODE]) {
      case 'value':
        return structuredClone(lookup(ctx.values, node.path));
      case 'name':
        return `${ctx.release}${node.suffix}`;
      case 'text':
        return node.parts.map((p) => String(render(p, ctx))).join('');
      case 'yamlOf':
        return stringify(render(node.ref, ctx));
      default:
        throw new Error(`chart: ${String(node[NODE])} is not a value here`);
    }
  }
  if (Array.isArray(node)) return node.flatMap((item) => (isNode(item) && item[NODE] === 'spread' ? render(item.ref, ctx) : [render(item, ctx)]));
  if (node !== null && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, render(v, ctx)]));
  return node;
}

// ---- the template text ----

/** A literal scalar in YAML's flow form: strings always double-quoted, so none reads as another type. */
function scalar(x) {
  if (typeof x === 'string') return JSON.stringify(x);
  if (typeof x === 'number' || typeof x === 'boolean' || x === null) return String(x);
  throw new Error(`chart: not a scalar: ${JSON.stringify(x)}`);
}

/** What a value node writes inline, by the type of its default (values.yaml). */
function inlineValue(ref, defaults) {
  const sample = lookup(defaults, ref.path);
  if (typeof sample === 'string') return `{{ .Values.${ref.path} | quote }}`;
  if (typeof sample === 'number' || typeof sample === 'boolean') return `{{ .Values.${ref.path} }}`;
  return undefined; // a map or a list: written with toYaml, on its own lines
}

function textTemplate(node, defaults) {
  const inner = node.parts
    .map((p) => {
      if (typeof p === 'string') return JSON.stringify(p).slice(1, -1);
      if (isNode(p) && p[NODE] === 'value') {
        if (typeof lookup(defaults, p.path) === 'object') throw new Error(`chart: .Values.${p.path} is not a scalar for text()`);
        return `{{ .Values.${p.path} }}`;
      }
      if (isNode(p) && p[NODE] === 'name') return `{{ .Release.Name }}${p.suffix}`;
      return JSON.stringify(String(p)).slice(1, -1);
    })
    .join('');
  return `"${inner}"`;
}

/** `key: X` where X fits on the key's line, else undefined. */
function inline(v, defaults) {
  if (isNode(v)) {
    if (v[NODE] === 'value') return inlineValue(v, defaults);
    if (v[NODE] === 'name') return `"{{ .Release.Name }}${v.suffix}"`;
    if (v[NODE] === 'text') return textTemplate(v, defaults);
    return undefined;
  }
  if (Array.isArray(v)) return v.length === 0 ? '[]' : undefined;
  if (v !== null && typeof v === 'object') return Object.keys(v).length === 0 ? '{}' : undefined;
  return scalar(v);
}

/** The lines of a map's entries at `indent` spaces. */
function mapLines(map, indent, defaults) {
  const pad = ' '.repeat(indent);
  const lines = [];
  for (const [key, v] of Object.entries(map)) {
    const k = /^[A-Za-z_][\w.\-/]*$/.test(key) ? key : JSON.stringify(key);
    const one = inline(v, defaults);
    if (one !== undefined) lines.push(`${pad}${k}: ${one}`);
    else if (isNode(v) && v[NODE] === 'value') lines.push(`${pad}${k}:`, `{{- toYaml .Values.${v.path} | nindent ${indent + 2} }}`);
    else if (isNode(v) && v[NODE] === 'yamlOf') lines.push(`${pad}${k}: |`, `{{- toYaml .Values.${v.ref.path} | nindent ${indent + 2} }}`);
    else if (Array.isArray(v)) lines.push(`${pad}${k}:`, ...listLines(v, indent + 2, defaults));
    else lines.push(`${pad}${k}:`, ...mapLines(v, indent + 2, defaults));
  }
  return lines;
}

/** The lines of a list's items, dashes at `indent` spaces. */
function listLines(list, indent, defaults) {
  const pad = ' '.repeat(indent);
  const lines = [];
  for (const item of list) {
    if (isNode(item) && item[NODE] === 'spread') {
      lines.push(`{{- with .Values.${item.ref.path} }}`, `{{- toYaml . | nindent ${indent} }}`, '{{- end }}');
      continue;
    }
    const one = inline(item, defaults);
    if (one !== undefined) lines.push(`${pad}- ${one}`);
    else if (Array.isArray(item) || isNode(item)) throw new Error('chart: a list item is a map or a scalar here');
    else {
      const inner = mapLines(item, indent + 2, defaults);
      if (inner[0].startsWith('{{')) throw new Error('chart: a list item must start with a plain key');
      lines.push(`${pad}- ${inner[0].slice(indent + 2)}`, ...inner.slice(1));
    }
  }
  return lines;
}

/** A Helm condition from `{ layout: 'shared', enabled: 'networkPolicy.enabled' }`-style parts. */
export function conditionTemplate(when) {
  const parts = [`(eq .Values.layout ${JSON.stringify(when.layout)})`, ...(when.enabled ? [`.Values.${when.enabled}`] : [])];
  return parts.length === 1 ? parts[0].slice(1, -1) : `and ${parts.join(' ')}`;
}

/** Whether a document is rendered with these values. */
export function conditionHolds(when, values) {
  return lookup(values, 'layout') === when.layout && (when.enabled === undefined || lookup(values, when.enabled) === true);
}

/**
 * A template file's text: each document under its condition, its comment first.
 * @param {{ comment: string, when: object, object: object }[]} docs
 */
export function templateText(docs, defaults) {
  const parts = docs.map(({ comment, when, object }) =>
    [`{{- if ${conditionTemplate(when)} }}`, '---', ...comment.split('\n').map((l) => `# ${l}`.trimEnd()), ...mapLines(object, 0, defaults), '{{- end }}'].join(
      '\n',
    ),
  );
  return `${parts.join('\n')}\n`;
}
