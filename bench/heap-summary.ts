// What a V8 heap snapshot holds, summed by type the way DevTools' Summary view groups it (an object
// by its constructor, strings together, compiled code together...): counts and self sizes of the top
// types, and the entry count of every lru-cache in the heap (keyway's leaf and context caches, the
// leak guard's, the throttles'): the used slots of its key list (a snapshot names small integers
// but gives no value, so its size field cannot be read). Used by bench/run.ts
// --profile after s2 and s5; self sizes only (retained sizes need the dominator tree: use DevTools).
import type { InspectorClient } from './inspector.ts';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapTypeRow {
  type: string;
  count: number;
  selfBytes: number;
}

export interface HeapSummary {
  totalBytes: number;
  nodes: number;
  top: HeapTypeRow[];
  /** Every LRUCache in the heap: entries held (slots of its #keyList that hold a key) and slots allocated. */
  lruCaches: Array<{ entries: number; slots: number }>;
  /** Instances of the types that hold keyway's connections and TLS state (present or not). */
  watched: HeapTypeRow[];
}

/** Types whose count says how many connections, pools and contexts are held, whatever their size rank. */
const WATCHED = ['LRUCache', 'SecureContext', 'TLSSocket', 'Socket', 'Pool', 'Client', 'Agent', 'HTTPParser', 'IncomingMessage', 'ServerResponse'];

const GROUP: Record<string, string> = {
  hidden: '(system)',
  array: '(array)',
  string: '(string)',
  'concatenated string': '(string)',
  'sliced string': '(string)',
  code: '(compiled code)',
  closure: '(closure)',
  number: '(number)',
  symbol: '(symbol)',
  bigint: '(bigint)',
  'object shape': '(object shape)',
};

/** Takes a snapshot of the process behind `client` (this forces a full GC there and costs it memory). */
export async function takeHeapSnapshot(client: InspectorClient): Promise<Snapshot> {
  const chunks: string[] = [];
  client.on('HeapProfiler.addHeapSnapshotChunk', (p) => chunks.push(String(p['chunk'])));
  try {
    await client.send('HeapProfiler.enable');
    await client.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false, captureNumericValue: true });
  } finally {
    client.on('HeapProfiler.addHeapSnapshotChunk', undefined);
  }
  await client.send('HeapProfiler.disable');
  return JSON.parse(chunks.join('')) as Snapshot;
}

export function summariseHeap(snap: Snapshot, top = 20): HeapSummary {
  const { node_fields, node_types, edge_fields, edge_types } = snap.snapshot.meta;
  const nf = node_fields.length;
  const ef = edge_fields.length;
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => node_fields.indexOf(f)) as [
    number,
    number,
    number,
    number,
  ];
  const [edgeTypeAt, edgeNameAt, toNodeAt] = ['type', 'name_or_index', 'to_node'].map((f) => edge_fields.indexOf(f)) as [number, number, number];
  const nodeTypes = node_types[0];
  const edgeTypes = edge_types[0];
  const { nodes, edges, strings } = snap;
  const rows = new Map<string, HeapTypeRow>();
  const lruCaches: HeapSummary['lruCaches'] = [];
  const lruRow: HeapTypeRow = { type: 'LRUCache', count: 0, selfBytes: 0 };
  let totalBytes = 0;
  let edge = 0;
  // Where each node's edges start: edges are laid out node after node.
  const firstEdge = new Uint32Array(nodes.length / nf + 1);
  for (let i = 0, e = 0; i < nodes.length; i += nf) {
    firstEdge[i / nf] = e;
    e += (nodes[i + edgeCountAt] as number) * ef;
  }
  /** Elements of the array node at `nodeIndex` that point at something other than undefined/holes. */
  const usedSlots = (nodeIndex: number): { entries: number; slots: number } => {
    const start = firstEdge[nodeIndex / nf] as number;
    let entries = 0;
    let slots = 0;
    for (let e = start; e < start + (nodes[nodeIndex + edgeCountAt] as number) * ef; e += ef) {
      if (edgeTypes[edges[e + edgeTypeAt] as number] !== 'element') continue;
      slots++;
      const to = edges[e + toNodeAt] as number;
      const toName = strings[nodes[to + nameAt] as number];
      if (!(nodeTypes[nodes[to + typeAt] as number] === 'hidden' && (toName === 'undefined' || toName === 'hole'))) entries++;
    }
    return { entries, slots };
  };
  for (let i = 0; i < nodes.length; i += nf) {
    const type = nodeTypes[nodes[i + typeAt] as number] ?? '?';
    const name = strings[nodes[i + nameAt] as number] ?? '?';
    const self = nodes[i + sizeAt] as number;
    const edgeCount = nodes[i + edgeCountAt] as number;
    const group = type === 'object' || type === 'native' || type === 'regexp' ? name : (GROUP[type] ?? `(${type})`);
    const row = rows.get(group) ?? { type: group, count: 0, selfBytes: 0 };
    row.count++;
    row.selfBytes += self;
    rows.set(group, row);
    totalBytes += self;
    if (type === 'object') {
      // lru-cache ships minified (its class and private fields renamed), but each instance keeps
      // [Symbol.toStringTag] = 'LRUCache'; its key list is its first own Array (max slots long).
      let isLru = false;
      let firstArray = -1;
      for (let e = edge; e < edge + edgeCount * ef; e += ef) {
        if (edgeTypes[edges[e + edgeTypeAt] as number] !== 'property') continue;
        const to = edges[e + toNodeAt] as number;
        const edgeName = strings[edges[e + edgeNameAt] as number];
        if (edgeName === '<symbol Symbol.toStringTag>' && strings[nodes[to + nameAt] as number] === 'LRUCache') isLru = true;
        else if (firstArray === -1 && nodeTypes[nodes[to + typeAt] as number] === 'object' && strings[nodes[to + nameAt] as number] === 'Array')
          firstArray = to;
      }
      if (isLru) {
        lruCaches.push(firstArray === -1 ? { entries: 0, slots: 0 } : usedSlots(firstArray));
        lruRow.count++;
        lruRow.selfBytes += self;
      }
    }
    edge += edgeCount * ef;
  }
  const all = [...rows.values()];
  return {
    totalBytes,
    nodes: nodes.length / nf,
    top: all.sort((a, b) => b.selfBytes - a.selfBytes).slice(0, top),
    lruCaches,
    watched: WATCHED.map((t) => (t === 'LRUCache' ? lruRow : (rows.get(t) ?? { type: t, count: 0, selfBytes: 0 }))),
  };
}
