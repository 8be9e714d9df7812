import { decodeLogLine } from '../core/log-decoder.ts';
import { createLogger } from '../core/logger.ts';

/**
 * What decoding a `key.processed` line costs (docs/worker.md, "Log events"):
 * `npx tsx bench/log-decoder-cost.ts`. The same lines, written by the worker's logger, are read three
 * ways: JSON.parse alone (the floor), the bench harness's former ad-hoc reading (three `includes`, then
 * JSON.parse and typeof checks of the fields it used) and core/log-decoder.ts (JSON.parse, then the
 * catalog's checks of every field). Prints the median of `ROUNDS` rounds of `LINES` lines each.
 */

const LINES = 100_000;
const ROUNDS = 7;

function makeLines(): string[] {
  const lines: string[] = [];
  const logger = createLogger({
    base: { workerId: 'ip-10-0-1-23.ec2.internal-4711' },
    write: (l) => lines.push(l),
  });
  for (let i = 0; i < LINES; i++) {
    logger.info('key.processed', {
      key: `session:${(i * 7919) % 1_000_000}:${i}`,
      node: `10.0.${i % 3}.17:6379`,
      fencingToken: 42,
      eventId: `0f3c1e5a9b7d2c4e6f8a0b1c3d5e7f9a1b2c3d4e:${i}`,
      latencyMs: 0.8 + (i % 10) / 10,
      handlerMs: 0.05,
      replayed: false,
    });
  }
  return lines;
}

type Reader = (line: string) => number;

const readers: Record<string, Reader> = {
  'JSON.parse only': (line) => {
    const record = JSON.parse(line) as { latencyMs?: number };
    return record.latencyMs ?? 0;
  },
  'ad-hoc (before)': (line) => {
    // bench/harness.ts before the decoder, for a key.processed line without --dump: the model's
    // check, the metrics check, then its own check.
    if (!line.includes('"key.processed"')) return 0;
    if (line.includes('"_aws"')) return 0;
    if (!line.includes('"key.processed"')) return 0;
    let record: { key?: unknown; time?: unknown; latencyMs?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      return 0;
    }
    if (typeof record.key !== 'string' || typeof record.time !== 'string') return 0;
    return (typeof record.latencyMs === 'number' ? record.latencyMs : 0) + Date.parse(record.time) * 0;
  },
  'decodeLogLine (after)': (line) => {
    const decoded = decodeLogLine(line);
    if (decoded.kind !== 'event' || decoded.record.event !== 'key.processed') return 0;
    return decoded.record.latencyMs + Date.parse(decoded.record.time) * 0;
  },
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function main(): void {
  const lines = makeLines();
  let sink = 0;
  const results: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    // Interleaved rounds, so machine noise spreads over all readers alike.
    for (const [name, read] of Object.entries(readers)) {
      const startNs = process.hrtime.bigint();
      for (const line of lines) sink += read(line);
      const elapsedNs = Number(process.hrtime.bigint() - startNs);
      const perLine = results[name] ?? [];
      perLine.push(elapsedNs / lines.length);
      results[name] = perLine;
    }
  }
  const bytes = lines.reduce((sum, line) => sum + line.length, 0) / lines.length;
  console.log(`${LINES} key.processed lines of ~${Math.round(bytes)} bytes, median of ${ROUNDS} rounds:`);
  for (const [name, perLine] of Object.entries(results)) {
    const ns = median(perLine);
    console.log(
      `  ${name.padEnd(24)} ${(ns / 1000).toFixed(2)} µs/line  ${Math.round(1e9 / ns).toLocaleString('en-US')} lines/s`,
    );
  }
  if (Number.isNaN(sink)) console.log('');
}

main();
