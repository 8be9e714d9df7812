import { execFile } from 'node:child_process';
import type { Cluster, Redis } from 'ioredis';
import { EXPIRED_CHANNEL, KeyspaceKeys } from '../../../core/keys.ts';
import type { LocalRedisCluster } from '../../../local/cluster.ts';
import { OUTBOX_PARTITIONS } from '../../../worker/handlers/stream-handler.ts';

/**
 * Helpers for the hostile-input tests (test/integration/security/): ground truth of what Redis
 * published, the worker's outbox as raw bytes, and its resident memory. Worker processes themselves
 * come from ../worker/helpers.ts.
 */

/** One `expired` notification as Redis published it (key bytes untouched). */
export interface PublishedExpiry {
  readonly key: Buffer;
  /** Port of the publishing primary. */
  readonly port: number;
}

/**
 * The test's own subscriber on every primary (one connection each, like the worker's): the ground
 * truth of which `expired` events were published. A connection that closes after subscribing makes
 * the ground truth incomplete, so it is recorded in `problems` and the tests refuse to conclude.
 */
export class ExpiryRecorder {
  readonly problems: string[] = [];
  private readonly clients: Redis[] = [];
  private closing = false;

  private constructor() {}

  static async start(
    cluster: LocalRedisCluster,
    onExpiry: (event: PublishedExpiry) => void,
  ): Promise<ExpiryRecorder> {
    const recorder = new ExpiryRecorder();
    try {
      for (const primary of await cluster.primaries()) {
        const client = cluster.nodeClient(primary.port);
        recorder.clients.push(client);
        client.on('messageBuffer', (channel: Buffer, message: Buffer) => {
          if (channel.toString('latin1') === EXPIRED_CHANNEL) onExpiry({ key: message, port: primary.port });
        });
        await client.subscribe(EXPIRED_CHANNEL);
        client.on('close', () => {
          if (!recorder.closing) recorder.problems.push(`recorder connection to ${primary.port} closed`);
        });
      }
    } catch (error) {
      recorder.stop();
      throw error;
    }
    return recorder;
  }

  stop(): void {
    this.closing = true;
    for (const client of this.clients.splice(0)) client.disconnect();
  }
}

/** One outbox entry with its fields as raw bytes. */
export interface OutboxEntry {
  readonly stream: string;
  readonly streamId: string;
  readonly fields: ReadonlyMap<string, Buffer>;
}

export const field = (entry: OutboxEntry, name: string): Buffer => {
  const value = entry.fields.get(name);
  if (value === undefined)
    throw new Error(`outbox entry ${entry.streamId} in ${entry.stream} has no ${name}`);
  return value;
};

/**
 * Reads the 16 outbox partitions `{kl:<name>:o<p>}:outbox` with XRANGE (binary replies), each poll
 * continuing after the last id seen, so `entries` grows with every entry exactly once.
 */
export class OutboxReader {
  readonly entries: OutboxEntry[] = [];
  private readonly streams: string[];
  private readonly lastIds: string[];

  constructor(
    private readonly client: Cluster,
    leaderName: string,
    private readonly pageSize = 2000,
  ) {
    const keys = new KeyspaceKeys(leaderName);
    this.streams = Array.from({ length: OUTBOX_PARTITIONS }, (_, p) => keys.outbox(p));
    this.lastIds = this.streams.map(() => '-');
  }

  /** Appends every entry written since the last poll; returns how many were new. */
  async poll(): Promise<number> {
    let added = 0;
    for (let p = 0; p < this.streams.length; p++) {
      const stream = this.streams[p] as string;
      for (;;) {
        const last = this.lastIds[p] as string;
        const start = last === '-' ? '-' : `(${last}`;
        const page = (await this.client.xrangeBuffer(stream, start, '+', 'COUNT', this.pageSize)) as [
          Buffer,
          Buffer[],
        ][];
        for (const [id, values] of page) {
          const fields = new Map<string, Buffer>();
          for (let i = 0; i + 1 < values.length; i += 2)
            fields.set((values[i] as Buffer).toString('latin1'), values[i + 1] as Buffer);
          const streamId = id.toString('latin1');
          this.entries.push({ stream, streamId, fields });
          this.lastIds[p] = streamId;
          added++;
        }
        if (page.length < this.pageSize) break;
      }
    }
    return added;
  }
}

/** Resident set size of a process, sampled with `ps -o rss=` every `intervalMs`. */
export class RssSampler {
  readonly samplesKiB: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.pending = this.sample().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    tick();
  }

  get maxKiB(): number {
    return this.samplesKiB.reduce((max, value) => Math.max(max, value), 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pending;
  }

  private sample(): Promise<void> {
    return new Promise<void>((resolve) => {
      execFile('ps', ['-o', 'rss=', '-p', String(this.pid)], (error, stdout) => {
        const kiB = Number.parseInt(stdout.trim(), 10);
        // A process that has exited has no RSS: nothing to record (the tests check liveness apart).
        if (!error && Number.isFinite(kiB)) this.samplesKiB.push(kiB);
        resolve();
      });
    });
  }
}

/** Polls `done` every `intervalMs` until it returns true or `timeoutMs` passes; returns the last verdict. */
export async function pollUntil(
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
  }
}
