import { type Redis, ReplyError } from 'ioredis';
import type { RedisConnectionConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { createNodeClient } from '../../core/redis-client.ts';
import type { ClusterNode } from '../../core/topology.ts';
import { keyDeadlines } from '../scripts/key-deadlines.ts';
import { scriptsOn } from '../scripts/registry.ts';
import { type DEFERRED, type ValueReadReply, valuesRead } from '../scripts/value-read.ts';
import type { ScanConnection } from './keyspace-scanner.ts';

/**
 * The keyspace scanner's connection to one primary (keyspace-scanner.ts): its own node connection,
 * built like every other (TLS, AUTH, backoff; core/redis-client.ts), so a scan never queues behind
 * the lease's commands on the Cluster client. Replies are read as Buffers (binary-safe keys).
 */
export class RedisScanConnection implements ScanConnection {
  private readonly client: Redis;

  constructor(node: ClusterNode, config: RedisConnectionConfig, logger: Logger) {
    this.client = createNodeClient(node, config, { logger, name: 'expiry-scan', commandTimeoutMs: 5000 });
    // Each time the connection is ready (a new primary, a reconnection: its script cache may be empty),
    // the value reads' script is run once without keys, so the node has it before a burst's first read:
    // a read-only script meeting NOSCRIPT costs a second round trip (registry.ts), which a cold worker
    // made so late in a first burst that the keys had expired meanwhile (their values `read-late`). A
    // failed load only leaves that round trip to the first read.
    this.client.on('ready', () => {
      this.readValues([0, 1]).catch(() => {});
    });
  }

  async supportsPexpiretime(): Promise<boolean> {
    // COMMAND INFO answers nil for a command the engine does not know (Redis < 7.0).
    const reply = (await this.client.call('COMMAND', 'INFO', 'PEXPIRETIME')) as unknown[];
    return Array.isArray(reply) && reply[0] !== null && reply[0] !== undefined;
  }

  async scan(
    cursor: string,
    count: number,
    match: string | undefined,
  ): Promise<readonly [string, readonly Buffer[]]> {
    const [next, keys] =
      match === undefined
        ? await this.client.scanBuffer(cursor, 'COUNT', count)
        : await this.client.scanBuffer(cursor, 'MATCH', match, 'COUNT', count);
    return [next.toString(), keys];
  }

  /**
   * With `oneCommand` (the toucher's batches: a thousand due keys must reach Redis at once), one
   * `key-deadlines` script call for every key (worker/scripts/key-deadlines.ts); when it fails with an
   * error reply (a key of a slot this node no longer serves fails the whole call), and without
   * `oneCommand` (lookups and the scan's: not due yet, and cheaper for the primary), the keys are looked
   * up one by one, pipelined, so only a moved key answers an error (MOVED). Measured at 10,000 TTL
   * writes a second: the script for the lookups too cost the primaries about twice the CPU of the
   * pipeline (docs/precise-expiry.md, "Cost on the cache").
   */
  async deadlines(keys: readonly Buffer[], oneCommand = false): Promise<readonly (number | Error)[]> {
    if (keys.length === 0) return [];
    if (oneCommand) {
      try {
        return await scriptsOn(this.client).run(keyDeadlines, [], keys);
      } catch (error) {
        if (!(error instanceof ReplyError)) throw error;
      }
    }
    const pipeline = this.client.pipeline();
    for (const key of keys) pipeline.pexpiretime(key);
    const results = (await pipeline.exec()) ?? [];
    return keys.map((_, i) => {
      const [error, reply] = results[i] ?? [new Error('no reply'), undefined];
      return error ?? (typeof reply === 'number' ? reply : new Error('unexpected PEXPIRETIME reply'));
    });
  }

  readValues(args: readonly (Buffer | number)[]): Promise<readonly (ValueReadReply | typeof DEFERRED)[]> {
    return scriptsOn(this.client).runBuffer(valuesRead, [], args);
  }

  async time(): Promise<readonly [string, string]> {
    const [seconds, micros] = (await this.client.time()) as unknown as [string | number, string | number];
    return [String(seconds), String(micros)];
  }

  close(): void {
    this.client.disconnect();
  }
}
