// startBufferReclaim (src/process/buffer-reclaim.ts) in a real Node process with --expose-gc, as
// `keyway start` runs: Buffers that die as soon as they are made, as a relayed body's do, pile up
// without it and are collected as they go with it.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../src/process/buffer-reclaim.ts', import.meta.url));

/**
 * A child that makes 40 MiB of 16 KiB Buffers, 1 MiB every 5 ms (about what the bench's 1 MiB
 * transfers move), each dropped at once, and prints by how much the memory V8 counts outside its
 * heap rose at most over its level before the first, in MiB.
 */
function externalGrowthMiB(reclaim: boolean): number {
  const script = `
    import { getHeapStatistics } from 'node:v8';
    import { startBufferReclaim } from ${JSON.stringify(MODULE)};
    const stop = ${reclaim} ? startBufferReclaim() : () => {};
    const start = getHeapStatistics().external_memory;
    let peak = start;
    let sink = 0;
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 64; j++) sink ^= Buffer.allocUnsafeSlow(16384)[0];
      peak = Math.max(peak, getHeapStatistics().external_memory);
      await new Promise((r) => setTimeout(r, 5));
    }
    stop();
    console.log(JSON.stringify({ growth: (peak - start) / 1048576, sink }));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=4', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return (JSON.parse(out) as { growth: number }).growth;
}

describe('startBufferReclaim', () => {
  it('keeps dead Buffers from piling up between scavenges', () => {
    const without = externalGrowthMiB(false);
    const withReclaim = externalGrowthMiB(true);
    // Without it V8 leaves them until its own limits: its young generation barely fills.
    expect(without).toBeGreaterThan(15);
    // With it: the 4 MiB step, and what arrives in the looks around a scavenge (~2 MiB each here).
    expect(withReclaim).toBeLessThan(10);
  });
});
