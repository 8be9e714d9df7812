import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { EXPIRED_CHANNEL } from '../core/keys.ts';
import type { LogEventFields, LogEventName } from '../core/log-events.ts';

/**
 * The seed's algorithm (Tony Bai's blog post "基于Redis Cluster的分布式锁实现以互斥方式操作共享资源",
 * 2021-02, cluster/v2/main.go), rendered in TypeScript as a worker program the bench runs like ours:
 * `node --import tsx bench/seed-baseline.ts` with REDIS_NODES, WORKER_ID and SEED_LOCK_NAME set. It
 * writes the same JSON lines as worker/main.ts (`leader.acquired`, `leader.released`,
 * `subscription.up`, `key.processed`), so the same harness measures both. It is a baseline for
 * comparison, not something to run.
 *
 * What it reproduces, line by line of the seed:
 * - `doElectionAndMaintainTheStatus` (lines 53-81): a `time.NewTicker(5 s)`; on each tick, a worker
 *   that is not leader calls `tryToBecomeLeader` (redsync `mutex.Lock()` over the one ClusterClient,
 *   so the quorum is 1); the leader instead runs `c.Expire(ctx, mutexName, 8*time.Second)`, a plain
 *   EXPIRE whose result is ignored (it also extends a lock that another worker holds by then). Once
 *   leader, `isLeader` is never reset. The first tick comes 5 s after start. A Go ticker keeps at most
 *   one tick waiting while the loop is busy (a Lock() that retries for ~15 s), the rest are dropped.
 * - redsync v4 `NewMutex` defaults as quoted in the post (expiry 8 s, tries 32, delay 500 ms, drift
 *   factor 0.01; redsync v4.0.4, current in Feb 2021) and `LockContext`: per try, SET name value NX
 *   PX 8000; success if the reply is OK and the validity (expiry - elapsed - 80 ms) is still positive;
 *   otherwise the compare-and-delete release script and the next try after the delay; a Redis error
 *   with no success ends Lock() at once. Lock() therefore keeps trying for ~15.5 s, and followers
 *   effectively retry every 500 ms. (redsync >= v4.3 retries after a random 50-250 ms instead; set
 *   SEED_RETRY_DELAY=random for that.)
 * - `doExpire` (v2, lines 83-130): one plain client per node listed in REDIS_NODES (primaries and
 *   replicas, like the seed's six addresses), SUBSCRIBE `__keyevent@0__:expired`, fan-in; an event is
 *   processed (here: `key.processed` written) only while `isLeader` is set. No topology following.
 * - `main` (lines 132-156): on SIGINT/SIGTERM `close(quit)`: both loops return, which stops processing
 *   and runs the election goroutine's deferred `mutex.Unlock()` (compare-and-delete) if this process
 *   acquired the lock; then exit.
 */

const MUTEX_EXPIRY_MS = 8000;
const TRIES = 32;
const FIXED_RETRY_DELAY_MS = 500;
const DRIFT_FACTOR = 0.01;
const TICKER_MS = 5000;

const DELETE_SCRIPT = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
else
  return 0
end`;

const workerId = process.env.WORKER_ID ?? `seed-${process.pid}`;
const mutexName = process.env.SEED_LOCK_NAME ?? 'the-year-of-the-ox-2021';
const randomDelay = process.env.SEED_RETRY_DELAY === 'random';
const nodes = (process.env.REDIS_NODES ?? '')
  .split(',')
  .filter((n) => n !== '')
  .map((n) => {
    const colon = n.lastIndexOf(':');
    return { host: n.slice(0, colon), port: Number(n.slice(colon + 1)) };
  });

/**
 * The seed's lines, in the catalog's shape (core/log-events.ts) so the bench decodes them like the
 * worker's: the seed has no fencing token (0, below every real one), no event numbering of its own
 * (`eventId` counts per node here) and does not know a node's role (`primary`, as the bench counts
 * the seed's subscriptions). Written with process.stdout.write, the seed's own I/O, not core's logger.
 */
function log<E extends LogEventName>(event: E, fields: LogEventFields<E>): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), level: 'info', event, workerId, ...fields })}\n`,
  );
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const retryDelayMs = () => (randomDelay ? 50 + Math.floor(Math.random() * 200) : FIXED_RETRY_DELAY_MS);

const client = new Cluster(nodes, { redisOptions: { connectionName: `seed-${workerId}` } });
client.on('error', () => {});

let isLeader = false;
let quit = false;
/** The value of the lock this process acquired (the mutex's `value`), for the deferred Unlock. */
let heldValue: string | undefined;

/** redsync v4.0.4 `Mutex.LockContext`, one pool. */
async function lock(): Promise<string | undefined> {
  const value = randomBytes(16).toString('base64');
  for (let i = 0; i < TRIES; i++) {
    if (quit) return undefined;
    if (i !== 0) await sleep(retryDelayMs());
    const start = performance.now();
    let acquired = false;
    let error: unknown;
    try {
      acquired = (await client.set(mutexName, value, 'PX', MUTEX_EXPIRY_MS, 'NX')) === 'OK';
    } catch (e) {
      error = e;
    }
    if (!acquired && error !== undefined) throw error;
    const now = performance.now();
    const validityMs = MUTEX_EXPIRY_MS - (now - start) - MUTEX_EXPIRY_MS * DRIFT_FACTOR;
    if (acquired && validityMs > 0) return value;
    await client.eval(DELETE_SCRIPT, 1, mutexName, value).catch(() => undefined);
  }
  return undefined;
}

/** Go `time.Ticker`: fires every period; at most one tick waits while the receiver is busy. */
class Ticker {
  private pending = false;
  private wake: (() => void) | undefined;
  private readonly timer = setInterval(() => {
    this.pending = true;
    this.wake?.();
  }, TICKER_MS);

  async next(): Promise<void> {
    while (!this.pending) await new Promise<void>((resolve) => (this.wake = resolve));
    this.pending = false;
    this.wake = undefined;
  }

  stop(): void {
    clearInterval(this.timer);
    this.pending = true;
    this.wake?.();
  }
}

const ticker = new Ticker();

async function doElectionAndMaintainTheStatus(): Promise<void> {
  for (;;) {
    await ticker.next();
    if (quit) return;
    if (!isLeader) {
      try {
        const value = await lock();
        if (value !== undefined && !quit) {
          heldValue = value;
          isLeader = true;
          log('leader.acquired', { fencingToken: 0, mode: 'single-key' });
        }
      } catch {
        // "try to become leader failed": wait for the next tick
      }
    } else {
      // "update the lock live time and maintain the leader status": plain EXPIRE, result ignored.
      client.expire(mutexName, MUTEX_EXPIRY_MS / 1000).catch(() => undefined);
    }
  }
}

const subscribers: Redis[] = [];
let processedCount = 0;

function doExpire(): void {
  for (const node of nodes) {
    const subscriber = new Redis({
      host: node.host,
      port: node.port,
      connectionName: `seed-sub-${workerId}`,
    });
    subscriber.on('error', () => {});
    subscriber.on('message', (_channel: string, key: string) => {
      if (quit || !isLeader) return;
      log('key.processed', {
        key,
        node: `${node.host}:${node.port}`,
        fencingToken: 0,
        eventId: `${node.host}:${node.port}:${++processedCount}`,
        latencyMs: 0,
        handlerMs: 0,
        replayed: false,
      });
    });
    subscriber.subscribe(EXPIRED_CHANNEL).then(
      () =>
        log('subscription.up', {
          node: `${node.host}:${node.port}`,
          nodeId: `${node.host}:${node.port}`,
          role: 'primary',
        }),
      () => undefined,
    );
    subscribers.push(subscriber);
  }
}

async function shutdown(): Promise<void> {
  if (quit) return;
  quit = true;
  ticker.stop();
  for (const subscriber of subscribers) subscriber.disconnect();
  if (heldValue !== undefined) {
    // The deferred `cf()`: mutex.Unlock().
    await client.eval(DELETE_SCRIPT, 1, mutexName, heldValue).catch(() => undefined);
    log('leader.released', { fencingToken: 0 });
  }
  client.disconnect();
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
log('worker.started', {
  pid: process.pid,
  instanceId: workerId,
  taskArn: null,
  leaderName: mutexName,
  handler: 'seed',
  keyPattern: '*',
  handlerConcurrency: 1,
  handlerQueueCapacity: 0,
  handlerTimeoutMs: 0,
  leaseTtlMs: MUTEX_EXPIRY_MS,
  leaseRenewIntervalMs: TICKER_MS,
  leaseRenewDeadlineMs: MUTEX_EXPIRY_MS,
  leaseRetryMs: FIXED_RETRY_DELAY_MS,
  seeds: nodes.map((n) => `${n.host}:${n.port}`),
});
doExpire();
doElectionAndMaintainTheStatus().catch((error: unknown) => {
  process.stderr.write(`seed-baseline: ${String(error)}\n`);
  process.exit(1);
});
