import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, no type declarations
import { callTree, renderFlameGraph } from '../../scripts/flamegraph.mjs';

// A tiny V8 profile: (root) -> main -> [work, <script>&] plus (idle); sample gaps of 1 ms.
const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber, scriptId: '0', columnNumber: 0 });
const PROFILE = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5] },
    { id: 2, callFrame: frame('main', 'file:///app/src/proxy/exchange.ts', 9), children: [3, 4] },
    { id: 3, callFrame: frame('work', 'file:///app/node_modules/undici/lib/core/util.js', 0) },
    { id: 4, callFrame: frame('<script>&', 'node:net', 4) },
    { id: 5, callFrame: frame('(idle)') },
  ],
  samples: [3, 3, 3, 4, 2, 5, 5, 5, 5, 3],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  startTime: 0,
  endTime: 10_000,
};

describe('flame graph script', () => {
  it('merges samples into a call tree weighted by time, leaving idle out', () => {
    const root = callTree(PROFILE);
    // 10 samples of 1 ms, 4 of them idle: 6 ms busy.
    expect(root.total).toBe(6000);
    const main = root.children.get('main src/proxy/exchange.ts:10');
    expect(main.total).toBe(6000);
    expect(main.area).toBe('keyway');
    expect(main.children.get('work undici/lib/core/util.js:1').total).toBe(4000);
    expect(main.children.get('<script>& node:net:5').area).toBe('node');
  });

  it('draws one frame per call-tree node with its share as a tooltip, labels escaped', () => {
    const svg: string = renderFlameGraph(PROFILE, 'title <t>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('title &#60;t&#62;');
    expect(svg).toContain('work undici/lib/core/util.js:1 (4.0 ms, 66.67%)');
    expect(svg).toContain('&#60;script&#62;&#38; node:net:5');
    expect(svg).not.toContain('(idle)');
    expect(svg.match(/<rect /g)?.length).toBe(1 + 4); // background + all, main, work, <script>&
  });
});
