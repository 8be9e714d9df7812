// Preloaded into bench workers (NODE_OPTIONS=--import, bench/on-time.ts): on SIGUSR2, collects the
// garbage and writes process.memoryUsage() as JSON to BENCH_HEAP_OUT, so the bench can read the heap a
// worker's deadline index takes. Plain JavaScript: it loads before the TypeScript loader.
import { writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const out = process.env.BENCH_HEAP_OUT;
if (out) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  process.on('SIGUSR2', () => {
    const startedMs = performance.now();
    gc();
    gc();
    // gcMs: how long the two collections blocked the worker's loop (the reading's own cost).
    const gcMs = performance.now() - startedMs;
    writeFileSync(out, JSON.stringify({ ...process.memoryUsage(), gcMs, atMs: Date.now() }));
  });
}
