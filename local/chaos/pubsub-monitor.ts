import type { LocalRedisCluster } from '../cluster.ts';
import { type ClientInfo, parseClientList } from './client-list.ts';
import { queryNode } from './node-query.ts';

/**
 * Watches the workers' subscriber connections from the Redis side: `CLIENT LIST TYPE pubsub` on every
 * primary at a fixed interval. Keeps the largest output buffer (`omem`, bytes) seen on a worker
 * subscriber (`name=kl-subscriber`) and, per primary, how many worker subscribers the last sample
 * found. A primary that does not answer is skipped in that sample.
 */

const WORKER_SUBSCRIBER_NAME = 'kl-subscriber';

export interface PubsubSample {
  readonly atMs: number;
  /** Worker subscriber connections per primary port. */
  readonly subscribers: ReadonlyMap<number, number>;
}

export class PubsubMonitor {
  readonly samples: PubsubSample[] = [];
  maxSubscriberOmem: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly cluster: LocalRedisCluster,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.sample()
        .then(() => undefined)
        .catch(() => undefined)
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sample now (also used for the final one, before the workers stop). */
  async sample(): Promise<PubsubSample> {
    const primaries = await this.cluster.primaries();
    const subscribers = new Map<number, number>();
    await Promise.all(
      primaries.map(async (primary) => {
        let clients: ClientInfo[];
        try {
          clients = parseClientList(
            String(await queryNode(this.cluster, primary.port, ['CLIENT', 'LIST', 'TYPE', 'pubsub'])),
          );
        } catch {
          return;
        }
        const workers = clients.filter((c) => c.name === WORKER_SUBSCRIBER_NAME);
        subscribers.set(primary.port, workers.length);
        for (const client of workers) {
          const omem = Number(client.omem);
          if (
            Number.isFinite(omem) &&
            (this.maxSubscriberOmem === undefined || omem > this.maxSubscriberOmem)
          ) {
            this.maxSubscriberOmem = omem;
          }
        }
      }),
    );
    const sample = { atMs: Date.now(), subscribers };
    this.samples.push(sample);
    return sample;
  }
}
