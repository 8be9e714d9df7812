import type { Clock } from '../../core/clock.ts';
import { KEYSPACE_SCANNER_DEFAULTS } from '../../core/defaults.ts';
import type { Logger } from '../../core/logger.ts';
import type { ClusterNode } from '../../core/topology.ts';
import type { DEFERRED, ValueReadReply } from '../scripts/value-read.ts';
import type { KeyMatcher } from './key-pattern.ts';

/**
 * The deadline index's second source (issue 13): a paced SCAN of every primary finds the volatile
 * keys no `expire` event announced to this worker: keys set before it started, during a gap of its
 * subscription, moved in by a slot migration (RESTORE publishes no `expire`), or dropped for capacity.
 *
 * - One connection per primary (`connect`), scanning one step at a time: `SCAN cursor MATCH
 *   KEY_PATTERN COUNT stepCount`, then PEXPIRETIME of the keys found, pipelined on the same
 *   connection; keys with a deadline go to `onDeadline` (the tracker). A reply of MOVED (the slot
 *   left during a migration) is a key the new owner's scan finds.
 * - Paced to `keysPerS` keys per second for the whole worker, shared by the primaries: each primary
 *   waits `keysScanned x primaries / keysPerS` after a step. A full pass over a primary of K keys
 *   takes about K x primaries / keysPerS seconds, and then starts again (README, "On-time expiry":
 *   what the pace costs and how long a pass takes).
 * - A primary whose engine has no PEXPIRETIME (Redis < 7.0: `COMMAND INFO` knows no such command)
 *   is not scanned; `onUnsupported` reports it once (the worker handles its keys natively).
 */
export interface ScanConnection {
  /** True when the engine has PEXPIRETIME. */
  supportsPexpiretime(): Promise<boolean>;
  /** One SCAN step: the next cursor ('0' when the pass is complete) and the keys of this step. */
  scan(
    cursor: string,
    count: number,
    match: string | undefined,
  ): Promise<readonly [string, readonly Buffer[]]>;
  /**
   * PEXPIRETIME of each key on this node, pipelined, or with `oneCommand` in one command (the
   * key-deadlines script); one result per key (an Error for a key the node does not serve).
   */
  deadlines(keys: readonly Buffer[], oneCommand?: boolean): Promise<readonly (number | Error)[]>;
  /** `TIME` on this node: [seconds, microseconds] (primary-clocks.ts). */
  time(): Promise<readonly [string, string]>;
  /** values-read with `args` on this node (value capture's batches, value-reader.ts). */
  readValues(args: readonly (Buffer | number)[]): Promise<readonly (ValueReadReply | typeof DEFERRED)[]>;
  close(): void;
}

export interface KeyspaceScannerOptions {
  readonly connect: (node: ClusterNode) => ScanConnection;
  readonly accepts: KeyMatcher;
  /**
   * Keys the index already tracks are not looked up again (their TTL changes come as `expire`
   * events): in steady state a pass costs its SCAN steps only. @default none (every key looked up)
   */
  readonly isTracked?: (key: Buffer) => boolean;
  /** SCAN's MATCH argument (KEY_PATTERN), undefined for `*`. */
  readonly match: string | undefined;
  /** A key (latin1) with its deadline in the primary's clock. */
  readonly onDeadline: (key: string, deadlineMs: number) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Keys scanned per second by this worker, all primaries together (EXPIRY_SCAN_KEYS_PER_S). */
  readonly keysPerS: number;
  /** SCAN COUNT per step. @default 100 */
  readonly stepCount?: number;
  /**
   * Shortest time from the start of one pass over a primary to the start of the next: a small
   * keyspace is not rescanned every second. @default 10000
   */
  readonly passIntervalMs?: number;
  /** Wait after a failed step. @default 1000 */
  readonly failureDelayMs?: number;
  /** A primary's engine lacks PEXPIRETIME: it is left to native expiry. */
  readonly onUnsupported?: (node: ClusterNode) => void;
  /** A pass over a primary completed (`pass` counts from 1 for each primary). */
  readonly onPassComplete?: (nodeId: string, pass: number, keysScanned: number, durationMs: number) => void;
}

interface PrimaryScan {
  readonly node: ClusterNode;
  readonly connection: ScanConnection;
  cursor: string;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
  /** The PEXPIRETIME check answered yes: only then is the primary scanned. */
  supported: boolean;
  passKeys: number;
  passStartMs: number;
  passes: number;
}

export class KeyspaceScanner {
  private readonly scans = new Map<string, PrimaryScan>();
  private running = false;

  constructor(private readonly options: KeyspaceScannerOptions) {
    if (!(options.keysPerS > 0)) throw new RangeError(`keysPerS must be > 0, got ${options.keysPerS}`);
  }

  /** Starts scanning the primaries given to `sync`. Idempotent. */
  start(): void {
    this.running = true;
    for (const scan of this.scans.values())
      if (scan.supported && scan.timer === undefined) this.schedule(scan, 0);
  }

  /** Scans exactly these primaries: new ones from the start of a pass, gone ones stop. */
  sync(primaries: readonly ClusterNode[]): void {
    const wanted = new Map(primaries.map((node) => [node.id, node]));
    for (const [id, scan] of this.scans) {
      if (!wanted.has(id)) this.drop(id, scan);
    }
    for (const [id, node] of wanted) {
      if (this.scans.has(id)) continue;
      const scan: PrimaryScan = {
        node,
        connection: this.options.connect(node),
        cursor: '0',
        timer: undefined,
        stopped: false,
        supported: false,
        passKeys: 0,
        passStartMs: this.options.clock.monotonicMs(),
        passes: 0,
      };
      this.scans.set(id, scan);
      this.checkSupport(scan);
    }
  }

  /**
   * `use` of the primary `nodeId`'s scan connection (its clock, primary-clocks.ts; the toucher's and
   * the tracker's batches, node-deadlines.ts; value reads, value-reader.ts); rejects when it has none.
   */
  on<T>(nodeId: string, use: (connection: ScanConnection) => Promise<T>): Promise<T> {
    const scan = this.scans.get(nodeId);
    return scan === undefined
      ? Promise.reject(new Error(`no connection to ${nodeId}`))
      : use(scan.connection);
  }

  /** `TIME` on the primary `nodeId` through its scan connection; rejects when it has none. */
  time(nodeId: string): Promise<readonly [string, string]> {
    return this.on(nodeId, (connection) => connection.time());
  }

  /** Stops every scan and closes the connections. */
  stop(): void {
    this.running = false;
    for (const [id, scan] of this.scans) this.drop(id, scan);
  }

  private drop(id: string, scan: PrimaryScan): void {
    scan.stopped = true;
    clearTimeout(scan.timer);
    scan.connection.close();
    this.scans.delete(id);
  }

  private checkSupport(scan: PrimaryScan): void {
    scan.connection.supportsPexpiretime().then(
      (supported) => {
        if (scan.stopped) return;
        if (!supported) {
          scan.stopped = true;
          this.options.onUnsupported?.(scan.node);
          return;
        }
        scan.supported = true;
        scan.passStartMs = this.options.clock.monotonicMs();
        if (this.running && scan.timer === undefined) this.schedule(scan, 0);
      },
      (error: unknown) => {
        if (scan.stopped) return;
        this.options.logger.debug('expiry.scan_failed', { nodeId: scan.node.id, error });
        scan.timer = setTimeout(() => {
          scan.timer = undefined;
          this.checkSupport(scan);
        }, this.options.failureDelayMs ?? KEYSPACE_SCANNER_DEFAULTS.failureDelayMs);
      },
    );
  }

  private schedule(scan: PrimaryScan, delayMs: number): void {
    if (scan.stopped || !this.running) return;
    scan.timer = setTimeout(() => {
      this.step(scan).catch(() => {});
    }, delayMs);
  }

  private async step(scan: PrimaryScan): Promise<void> {
    const stepCount = this.options.stepCount ?? KEYSPACE_SCANNER_DEFAULTS.stepCount;
    let scanned = 0;
    // The first step of a pass starts it (the pass interval counts from here).
    if (scan.cursor === '0' && scan.passKeys === 0) scan.passStartMs = this.options.clock.monotonicMs();
    let completedPassStartMs: number | undefined;
    try {
      const [next, keys] = await scan.connection.scan(scan.cursor, stepCount, this.options.match);
      if (scan.stopped) return;
      scanned = keys.length;
      const isTracked = this.options.isTracked;
      const accepted = keys.filter(
        (key) => this.options.accepts(key) && (isTracked === undefined || !isTracked(key)),
      );
      if (accepted.length > 0) {
        const replies = await scan.connection.deadlines(accepted);
        if (scan.stopped) return;
        for (let i = 0; i < accepted.length; i++) {
          const reply = replies[i];
          if (typeof reply === 'number' && reply >= 0) {
            this.options.onDeadline((accepted[i] as Buffer).toString('latin1'), reply);
          }
        }
      }
      scan.passKeys += scanned;
      scan.cursor = next;
      if (next === '0') {
        const now = this.options.clock.monotonicMs();
        scan.passes++;
        this.options.onPassComplete?.(scan.node.id, scan.passes, scan.passKeys, now - scan.passStartMs);
        completedPassStartMs = scan.passStartMs;
        scan.passKeys = 0;
      }
    } catch (error) {
      if (scan.stopped) return;
      this.options.logger.debug('expiry.scan_failed', { nodeId: scan.node.id, error });
      this.schedule(scan, this.options.failureDelayMs ?? KEYSPACE_SCANNER_DEFAULTS.failureDelayMs);
      return;
    }
    // Pace: this primary's share of keysPerS. An empty step (a sparse table) still costs a step's
    // worth, so an empty keyspace is not polled in a tight loop.
    // The next pass starts no sooner than `passIntervalMs` after the start of the one just completed
    // (a small keyspace is not rescanned in a loop).
    let scanning = 0;
    for (const other of this.scans.values()) if (other.supported && !other.stopped) scanning++;
    const share = this.options.keysPerS / Math.max(1, scanning);
    const pacedMs = (Math.max(scanned, stepCount / 10) / share) * 1000;
    const passIntervalMs = this.options.passIntervalMs ?? KEYSPACE_SCANNER_DEFAULTS.passIntervalMs;
    const untilNextPassMs =
      completedPassStartMs === undefined
        ? 0
        : completedPassStartMs + passIntervalMs - this.options.clock.monotonicMs();
    this.schedule(scan, Math.max(pacedMs, untilNextPassMs));
  }
}
