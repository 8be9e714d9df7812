import { writeFileSync } from 'node:fs';
import type { ExpiryHandler } from '../worker/handlers/expiry-handler.ts';

/**
 * HANDLER for the burst benchmark's no-op variant: does nothing but count its calls and note when
 * the last one came, and writes `{ calls, lastCallAtMs }` to BENCH_BURST_OUT at most every
 * REPORT_INTERVAL_MS (LOG_LEVEL=warn, so no line per event). Times are wall-clock ms with sub-ms
 * resolution, the bench's clock on the same machine.
 */
const REPORT_INTERVAL_MS = 100;
const out = process.env.BENCH_BURST_OUT;
let calls = 0;
let lastCallAtMs = 0;
let reportPending = false;

const report = () => {
  reportPending = false;
  if (out) writeFileSync(out, JSON.stringify({ calls, lastCallAtMs }));
};

const countingNoop: ExpiryHandler = () => {
  calls++;
  lastCallAtMs = performance.timeOrigin + performance.now();
  if (!reportPending) {
    reportPending = true;
    setTimeout(report, REPORT_INTERVAL_MS);
  }
};
export default countingNoop;
