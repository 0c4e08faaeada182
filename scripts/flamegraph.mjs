#!/usr/bin/env node
// Draws a V8 .cpuprofile (node --cpu-prof, or `npm run bench -- --cpu-prof`) as a flame graph SVG,
// so a profile can be committed under docs/perf/ and read in any browser, with a tooltip per frame.
//
//   node scripts/flamegraph.mjs PROFILE.cpuprofile OUT.svg [--title TEXT]
//
// Written here rather than taken from npm: the one renderer there (flamegraph 1.3) no longer reads
// the .cpuprofile format Node writes, and the drawing is a page of arithmetic. Idle samples are left
// out, so the widths are shares of the time the process was busy.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const WIDTH = 1200;
const FRAME = 16;
const PAD = 10;
const TITLE_SPACE = 36;
const MIN_PX = 1; // narrower frames are dropped (their time still counts in their parent)
const CHAR_PX = 6.6; // average glyph width of 11 px sans-serif, to fit labels

export function main(argv) {
  const args = [...argv];
  const titleAt = args.indexOf('--title');
  const title = titleAt >= 0 ? args.splice(titleAt, 2)[1] : undefined;
  const [input, output] = args;
  if (!input || !output) {
    console.error('usage: node scripts/flamegraph.mjs PROFILE.cpuprofile OUT.svg [--title TEXT]');
    return 2;
  }
  const profile = JSON.parse(readFileSync(input, 'utf8'));
  const svg = renderFlameGraph(profile, title ?? `CPU flame graph: ${basename(input)}`);
  writeFileSync(output, svg);
  return 0;
}

/** One frame of the merged call tree: its label, its samples (self and below), its children. */
function frame(label, area) {
  return { label, area, total: 0, children: new Map() };
}

/** Merges the profile's nodes into one tree keyed by frame label, weighted by sample time (µs). */
export function callTree(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  const selfUs = new Map();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // A sample's time is the gap to the next one (V8 records the gap before each sample).
    const us = Math.max(0, deltas[i + 1] ?? deltas[i] ?? 0);
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + us);
  }
  const root = frame('all', 'root');
  for (const [id, us] of selfUs) {
    const stack = [];
    for (let at = id; at !== undefined; at = parentOf.get(at)) stack.push(byId.get(at));
    stack.reverse();
    if (stack.some((n) => n.callFrame.functionName === '(idle)')) continue;
    let into = root;
    into.total += us;
    for (const n of stack) {
      if (n.callFrame.functionName === '(root)') continue;
      const { label, area } = describe(n.callFrame);
      let child = into.children.get(label);
      if (!child) {
        child = frame(label, area);
        into.children.set(label, child);
      }
      child.total += us;
      into = child;
    }
  }
  return root;
}

/** A frame's label (function and where it lives) and its area, which picks its colour. */
function describe({ functionName, url, lineNumber }) {
  const name = functionName || '(anonymous)';
  if (!url) return { label: name, area: name.startsWith('(') ? 'v8' : 'native' };
  const npm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (npm) return { label: `${name} ${npm[1]}/${npm[2]}:${lineNumber + 1}`, area: 'npm' };
  if (url.startsWith('node:')) return { label: `${name} ${url}:${lineNumber + 1}`, area: 'node' };
  const own = /\/(src|dist)\/(.*)$/.exec(url);
  if (own) return { label: `${name} ${own[1]}/${own[2]}:${lineNumber + 1}`, area: 'keyway' };
  return { label: `${name} ${basename(url)}:${lineNumber + 1}`, area: 'other' };
}

const COLOURS = {
  keyway: ['#e8743b', '#f0a35e'],
  npm: ['#d9b44a', '#ecd27a'],
  node: ['#7fb069', '#a9cf8f'],
  native: ['#6fa8dc', '#9fc5e8'],
  v8: ['#a0a0a0', '#c8c8c8'],
  other: ['#b48ead', '#d3b8cf'],
  root: ['#888888', '#888888'],
};

const escapeXml = (s) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The SVG document: root at the bottom, callers below callees, width = share of busy time. */
export function renderFlameGraph(profile, title) {
  const root = callTree(profile);
  const scale = root.total > 0 ? (WIDTH - 2 * PAD) / root.total : 0;
  const rects = [];
  let depthMax = 0;
  const place = (node, x, depth) => {
    const w = node.total * scale;
    if (w < MIN_PX) return;
    depthMax = Math.max(depthMax, depth);
    rects.push({ node, x, depth, w });
    let cx = x;
    for (const child of [...node.children.values()].sort((a, b) => (a.label < b.label ? -1 : 1))) {
      place(child, cx, depth + 1);
      cx += child.total * scale;
    }
  };
  place(root, PAD, 0);
  const height = TITLE_SPACE + (depthMax + 1) * FRAME + PAD;
  const busyMs = root.total / 1000;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Verdana, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fbfbf6"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<text x="${WIDTH / 2}" y="32" text-anchor="middle" fill="#555">busy ${busyMs.toFixed(0)} ms (idle left out); width = share of busy time; hover a frame for its figures. Orange: keyway, yellow: npm, green: node, blue: native, grey: V8</text>`,
  ];
  for (const { node, x, depth, w } of rects) {
    const y = height - PAD - (depth + 1) * FRAME;
    const [a, b] = COLOURS[node.area] ?? COLOURS.other;
    const fill = hash(node.label) % 2 === 0 ? a : b;
    const ms = node.total / 1000;
    const pct = root.total > 0 ? (100 * node.total) / root.total : 0;
    const tip = `${node.label} (${ms.toFixed(1)} ms, ${pct.toFixed(2)}%)`;
    const chars = Math.floor((w - 4) / CHAR_PX);
    const text = chars >= 3 ? (node.label.length <= chars ? node.label : `${node.label.slice(0, chars - 2)}..`) : '';
    out.push(
      `<g><title>${escapeXml(tip)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${FRAME - 1}" fill="${fill}" rx="1"/>` +
        (text ? `<text x="${(x + 2).toFixed(1)}" y="${y + FRAME - 4}">${escapeXml(text)}</text>` : '') +
        '</g>',
    );
  }
  out.push('</svg>\n');
  return out.join('\n');
}

function hash(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(h);
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2));
