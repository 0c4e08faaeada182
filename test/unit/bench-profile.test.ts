// The pure parts of `npm run bench -- --profile`: a CPU profile summed by kind and by src/ folder
// (frames in dist/ mapped back to src/ files), and a heap snapshot summed by type with lru-cache entries.
import { describe, expect, it } from 'vitest';
import { summariseHeap } from '../../bench/heap-summary.ts';
import { type CpuProfile, summariseCpuProfile } from '../../bench/profile.ts';

const frame = (id: number, functionName: string, url = '') => ({ id, callFrame: { functionName, url, lineNumber: 0, columnNumber: 0 } });

describe('CPU profile by kind and folder', () => {
  it('puts each frame in one kind, maps dist/ chunks to src/ folders, and leaves idle out', () => {
    const profile: CpuProfile = {
      nodes: [
        frame(1, '(idle)'),
        frame(2, 'stage', 'file:///x/dist/chunks/app-AbCdEf12.js'),
        frame(3, 'write', 'file:///x/dist/chunks/app-AbCdEf12.js'),
        frame(4, 'execute', 'file:///x/node_modules/undici/lib/dispatcher/client-h1.js'),
        frame(5, 'emit', 'node:events'),
        frame(6, '(garbage collector)'),
        frame(7, 'writev'),
        frame(8, '(program)'),
        frame(9, 'wasm-function[20]', 'wasm://wasm/00034eea'),
      ],
      // Each sample is charged the interval after it (timeDeltas[i + 1]).
      samples: [1, 2, 3, 4, 5, 6, 7, 8, 9, 1],
      timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
      startTime: 0,
      endTime: 10_000,
    };
    const sourceOf = (_url: string, _line: number, _column: number) => 'src/proxy/stages/index.ts';
    const report = summariseCpuProfile(profile, 'p', 15, (url, line, column) => (url.includes('/dist/') ? sourceOf(url, line, column) : undefined));
    expect(report.busyMs).toBe(8);
    const kinds = Object.fromEntries(report.byKind.map((r) => [r.name, r.ms]));
    expect(kinds).toEqual({
      "keyway's own files": 2,
      'npm packages': 2,
      "Node's JavaScript (node:*)": 1,
      'garbage collector': 1,
      'native writes (writev, write*String)': 1,
      'other native and V8 ((program), C++ bindings)': 1,
    });
    expect(report.byFolder.find((r) => r.name === 'keyway:src/proxy')?.ms).toBe(2);
    expect(report.own.ms).toBe(2);
  });
});

describe('heap snapshot summary', () => {
  it('groups by constructor and by V8 kind, and counts the keys an LRUCache (minified: known by its toStringTag) holds', () => {
    const strings = ['', 'C', '<symbol Symbol.toStringTag>', 'LRUCache', 'Array', 'k1', 'k2', 'undefined', 'Foo', 'x', 'keys'];
    const nodeTypes = ['hidden', 'array', 'string', 'object', 'code', 'closure'];
    // Nodes: type, name, id, self_size, edge_count; edges: type, name_or_index, to_node (an index into nodes).
    // biome-ignore format: one node or edge a line
    const nodes = [
      3, 1, 1, 100, 2, // 0: an LRUCache whose class is minified to C: its tag, its key list
      2, 3, 2, 16, 0, // 5: the string 'LRUCache'
      3, 4, 3, 64, 3, // 10: its key list, three slots
      2, 5, 4, 20, 0, // 15: 'k1'
      2, 6, 5, 20, 0, // 20: 'k2'
      0, 7, 6, 0, 0, // 25: undefined (an empty slot)
      3, 8, 7, 40, 0, // 30: a Foo
      4, 9, 8, 500, 0, // 35: compiled code
    ];
    // biome-ignore format: one edge a line
    const edges = [
      2, 2, 5, // LRU -[Symbol.toStringTag]-> 'LRUCache'
      2, 10, 10, // LRU -keys-> its key list
      1, 0, 15,
      1, 1, 20,
      1, 2, 25,
    ];
    const summary = summariseHeap({
      snapshot: {
        meta: {
          node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
          node_types: [nodeTypes],
          edge_fields: ['type', 'name_or_index', 'to_node'],
          edge_types: [['context', 'element', 'property']],
        },
      },
      nodes,
      edges,
      strings,
    });
    expect(summary.lruCaches).toEqual([{ entries: 2, slots: 3 }]);
    expect(summary.totalBytes).toBe(760);
    expect(summary.top[0]).toEqual({ type: '(compiled code)', count: 1, selfBytes: 500 });
    expect(summary.top.find((r) => r.type === '(string)')).toEqual({ type: '(string)', count: 3, selfBytes: 56 });
    expect(summary.watched.find((r) => r.type === 'LRUCache')).toEqual({ type: 'LRUCache', count: 1, selfBytes: 100 });
    expect(summary.watched.find((r) => r.type === 'Pool')?.count).toBe(0);
  });
});
