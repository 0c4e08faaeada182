// Preloaded into a keyway child (node --require) by `bench/ab.ts --scenario=s2m --gc`: every
// garbage collection, with its kind, duration and start on the monotonic clock (the one the bench's
// turn spans use, process.hrtime), saved to a file the bench reads after the turns (gc-sides.ts).
// It allocates a row per collection (hundreds a second): small beside the load it watches, and the
// same for both sides of an s2m run.
'use strict';
const { PerformanceObserver, performance } = require('node:perf_hooks');
const { writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const SAVE_EVERY_MS = 2000;
// performance.now() counts from the process's time origin; the spans count on process.hrtime.
const originNs = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
const rows = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) rows.push([String(originNs + BigInt(Math.round(entry.startTime * 1e6))), entry.duration, entry.detail.kind]);
}).observe({ entryTypes: ['gc'] });
const save = () => writeFileSync(join(tmpdir(), `keyway-bench-gc-${process.pid}.json`), JSON.stringify(rows));
setInterval(save, SAVE_EVERY_MS).unref();
process.on('exit', save);
