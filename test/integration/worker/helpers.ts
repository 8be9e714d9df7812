import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { keySlot } from '../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../core/keys.ts';
import { decodeLogLine } from '../../../core/log-decoder.ts';
import type { LocalRedisCluster } from '../../../local/cluster.ts';
import type { ExpiredValue } from '../../../worker/handlers/expiry-handler.ts';
import { OUTBOX_PARTITIONS } from '../../../worker/handlers/stream-handler.ts';

/** Helpers for worker integration tests: workers run as child processes, read through their stdout. */

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A random suffix for LEADER_NAME and key prefixes (guide: every integration test uses its own). */
export function randomSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** One JSON log line of a worker, with the test's wall clock at the moment it was read. */
export interface LogLine {
  readonly event: string;
  readonly level: string;
  readonly time: string;
  readonly workerId: string;
  readonly [field: string]: unknown;
}

/** Milliseconds since the epoch of a line's `time` field (written by the worker when it logged). */
export const timeOf = (line: LogLine) => Date.parse(line.time);

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Env every test worker gets on top of the test's own. */
export function workerEnv(cluster: LocalRedisCluster, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    REDIS_NODES: cluster.seeds.map((s) => `${s.host}:${s.port}`).join(','),
    HEALTH_PORT: '0',
    LOG_LEVEL: 'info',
    // The tests count `key.processed` lines: one per completed call.
    PROCESSED_LOG: 'all',
    ...extra,
  };
}

export class WorkerProcess {
  readonly lines: LogLine[] = [];
  /** EMF documents (lines with `_aws`). */
  readonly metricDocuments: Record<string, unknown>[] = [];
  stderr = '';
  readonly exited: Promise<ExitStatus>;
  private readonly child: ChildProcess;
  private buffered = '';
  private waiters: (() => void)[] = [];
  private exitStatus: ExitStatus | undefined;

  private constructor(
    readonly name: string,
    env: Record<string, string>,
    command: readonly string[],
  ) {
    this.child = spawn(command[0] as string, command.slice(1), {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        this.notify();
        resolve({ code, signal });
      });
    });
  }

  /** `node --import tsx worker/main.ts` with `env` (no npx: one process per worker, faster start). */
  static start(name: string, env: Record<string, string>): WorkerProcess {
    return new WorkerProcess(name, { WORKER_ID: name, ...env }, [
      process.execPath,
      '--import',
      'tsx',
      'worker/main.ts',
    ]);
  }

  /** Any command, e.g. `npm run worker`. */
  static command(name: string, env: Record<string, string>, command: readonly string[]): WorkerProcess {
    return new WorkerProcess(name, env, command);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get hasExited(): boolean {
    return this.exitStatus !== undefined;
  }

  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.hasExited) this.child.kill(signal);
  }

  /** SIGKILL (also wakes a stopped process) and waits for the exit. Idempotent. */
  async kill(): Promise<void> {
    if (!this.hasExited) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Waits until `find` returns a line (checked on every new line), or throws after `timeoutMs`. */
  async waitFor(
    find: (worker: WorkerProcess) => LogLine | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(this);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.hasExited) {
        throw new Error(
          `${this.name}: ${what} not seen within ${timeoutMs} ms${this.hasExited ? ' (process exited)' : ''}; last lines:\n${this.tail()}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForEvent(
    event: string,
    timeoutMs: number,
    match: (line: LogLine) => boolean = () => true,
  ): Promise<LogLine> {
    return this.waitFor(
      (w) => w.lines.find((l) => l.event === event && match(l)),
      timeoutMs,
      `event ${event}`,
    );
  }

  tail(count = 15): string {
    const lines = this.lines.slice(-count).map((l) => JSON.stringify(l));
    return [...lines, this.stderr.slice(-2000)].join('\n');
  }

  private onStdout(chunk: string): void {
    this.buffered += chunk;
    let newline = this.buffered.indexOf('\n');
    while (newline >= 0) {
      const text = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      newline = this.buffered.indexOf('\n');
      if (text.trim() === '') continue;
      // Through the catalog's decoder, as the runner and the chaos suite read lines. A handler
      // module's own events (ctx.log, not catalogued) are kept as they are; any other refused line
      // goes to stderr, where a failing test shows it.
      const decoded = decodeLogLine(text);
      if (decoded.kind === 'metrics') this.metricDocuments.push(decoded.value);
      else if (decoded.kind === 'event') this.lines.push(decoded.record as LogLine);
      else if (decoded.reason === 'unknown-event' && decoded.value) this.lines.push(decoded.value as LogLine);
      else this.stderr += `[stdout, ${decoded.reason}: ${decoded.detail}] ${text}\n`;
    }
    this.notify();
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** Sum of one EMF metric over a worker's documents. */
export function metricTotal(worker: WorkerProcess, name: string): number {
  let total = 0;
  for (const doc of worker.metricDocuments) {
    const value = doc[name];
    if (typeof value === 'number') total += value;
    else if (Array.isArray(value)) total += value.length;
  }
  return total;
}

/** A Cluster client for the test's own writes (fresh slot map; the test disconnects it). */
export function testClient(cluster: LocalRedisCluster): Cluster {
  const client = new Cluster(cluster.seeds, {
    redisOptions: { ...cluster.clientOptions(), connectTimeout: 2000 },
    clusterRetryStrategy: (times) => (times > 20 ? null : 100),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
  });
  client.on('error', () => {});
  return client;
}

/** `count` keys `${prefix}:<n>` whose slots lie in `ranges`, starting the search at `from`. */
export function keysInRanges(
  prefix: string,
  ranges: readonly (readonly [number, number])[],
  count: number,
): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count && i < 1_000_000; i++) {
    const key = `${prefix}:${i}`;
    const slot = keySlot(key);
    if (ranges.some(([first, last]) => slot >= first && slot <= last)) keys.push(key);
  }
  return keys;
}

/**
 * Writes keys with a short TTL at a steady rate until stopped; every key written is recorded with
 * the test's wall clock. Writes that fail (e.g. during a failover) are counted, not thrown.
 */
export class KeyWriter {
  readonly written: { key: string; atMs: number }[] = [];
  failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private counter = 0;
  private pending = new Set<Promise<unknown>>();

  constructor(
    private readonly client: Cluster,
    private readonly prefix: string,
    private readonly options: { perTick: number; tickMs: number; ttlMs: number },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      for (let i = 0; i < this.options.perTick; i++) {
        const key = `${this.prefix}:${this.counter++}`;
        const write = this.client.set(key, '1', 'PX', this.options.ttlMs).then(
          () => this.written.push({ key, atMs: Date.now() }),
          () => this.failures++,
        );
        this.pending.add(write);
        void write.finally(() => this.pending.delete(write));
      }
    }, this.options.tickMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.pending);
  }
}

/** One entry of the stream outbox (HANDLER=stream; docs/worker.md, "Entry format"). */
export interface OutboxEntry {
  readonly stream: string;
  readonly streamId: string;
  /** The entry's fields by name, each value as its exact bytes. */
  readonly fields: ReadonlyMap<string, Buffer>;
}

/** Every entry of `leaderName`'s outbox, all partitions, each partition in stream order. */
export async function readOutbox(client: Cluster, leaderName: string): Promise<OutboxEntry[]> {
  const keys = new KeyspaceKeys(leaderName);
  const entries: OutboxEntry[] = [];
  for (let p = 0; p < OUTBOX_PARTITIONS; p++) {
    const stream = keys.outbox(p);
    const page = (await client.xrangeBuffer(stream, '-', '+')) as [Buffer, Buffer[]][];
    for (const [id, values] of page) {
      const fields = new Map<string, Buffer>();
      for (let i = 0; i + 1 < values.length; i += 2)
        fields.set((values[i] as Buffer).toString('latin1'), values[i + 1] as Buffer);
      entries.push({ stream, streamId: id.toString('latin1'), fields });
    }
  }
  return entries;
}

/** A score as Redis' ZADD reads it (String(-0) would lose the sign, String(Infinity) is not Redis' word). */
export function scoreText(score: number): string {
  if (score === Number.POSITIVE_INFINITY) return '+inf';
  if (score === Number.NEGATIVE_INFINITY) return '-inf';
  return Object.is(score, -0) ? '-0' : String(score);
}

/**
 * Writes `value` at `key` (deleting what was there), with the deadline `deadlineMs` when given
 * (SET ... PXAT for a string, PEXPIREAT after the collection's write: exact), for the value-capture
 * tests (value-reader.test.ts, value-capture.test.ts).
 */
export async function writeValue(
  client: Cluster,
  key: Buffer | string,
  value: ExpiredValue,
  deadlineMs: number | undefined,
): Promise<void> {
  await client.del(key);
  switch (value.type) {
    case 'string':
      if (deadlineMs === undefined) await client.set(key, value.bytes);
      else await client.set(key, value.bytes, 'PXAT', deadlineMs);
      return;
    case 'hash':
      await client.hset(key, ...value.fields.flat());
      break;
    case 'list':
      await client.rpush(key, ...value.items);
      break;
    case 'set':
      await client.sadd(key, ...value.members);
      break;
    case 'zset':
      await client.zadd(key, ...value.members.flatMap(([m, s]) => [scoreText(s), m]));
      break;
  }
  if (deadlineMs !== undefined) await client.pexpireat(key, deadlineMs);
}
