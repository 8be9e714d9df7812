import type { Cluster } from 'ioredis';
import type { Clock } from '../../core/clock.ts';
import type { RedisConnectionConfig } from '../../core/config.ts';
import { VALUE_CAPTURE_DEFAULTS } from '../../core/defaults.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import { livePrimaries, nodeAddress, type Topology } from '../../core/topology.ts';
import type { LeadershipView } from '../leader/leadership.ts';
import { clusterDeadlines } from './cluster-deadlines.ts';
import { DeadlineIndex } from './deadline-index.ts';
import { ExpireEventProbe } from './expire-event-probe.ts';
import type { ExpiryEvent } from './expiry-event.ts';
import { ExpiryToucher, leaderTouchAtMs } from './expiry-toucher.ts';
import { ExpiryTracker, type TrackedDeadline } from './expiry-tracker.ts';
import { HeldValues } from './held-values.ts';
import type { KeyMatcher } from './key-pattern.ts';
import { KeyspaceScanner } from './keyspace-scanner.ts';
import { nodeDeadlines } from './node-deadlines.ts';
import { PrimaryClocks } from './primary-clocks.ts';
import { CAPTURE_OFF, type CapturedValue } from './processor.ts';
import { RedisScanConnection } from './scan-connection.ts';
import { ValueCapture } from './value-capture.ts';
import { ValueCaptureReporter } from './value-capture-reporter.ts';
import { ValueReader } from './value-reader.ts';

/**
 * On-time expiry (issue 13, docs/precise-expiry.md), built from its stages: the deadline index
 * (deadline-index.ts) fed by the tracker (`expire` events, expiry-tracker.ts) and the paced scan
 * (keyspace-scanner.ts), the toucher that makes each key expire at its deadline (expiry-toucher.ts),
 * and each primary's clock offset (primary-clocks.ts). Every worker runs all of it (a follower's index
 * is warm, and it touches as a backstop); the leader touches at the deadline.
 *
 * What it gives the pipeline: `onTtlSet` (the subscriber pool's `expire` events), `takeDeadline` (the
 * fan-in: an `expired` event of a tracked key carries its deadline), `syncTopology` (every discovery:
 * the scan's primaries and the slot map of the clocks), `leadershipChanged` (the toucher's timing).
 *
 * Metrics: `TrackedKeys` (gauge, every `gaugeIntervalMs`), `NativeExpiryPrimaries` (gauge: primaries
 * without PEXPIRETIME, left to native expiry); `ExpiryLagMs` is the processor's (deadline -> handler).
 * With value capture: `HeldValueBytes` (gauge with TrackedKeys: held values plus reads in flight, as
 * charged against VALUE_BUDGET_BYTES; 0 on a follower), `ValuesCaptured`, `ValuesMissing` by `Reason`
 * and `ValuesReleased` (value-capture-reporter.ts; declared, so quiet flushes write 0).
 */
export interface PreciseExpiryOptions {
  /** A Cluster client of its own, with auto-pipelining (core/redis-client.ts `autoPipelining`). */
  readonly cluster: Cluster;
  /** For the scan's per-primary connections. */
  readonly redis: RedisConnectionConfig;
  /** The pipeline's key filter. */
  readonly accepts: KeyMatcher;
  /** KEY_PATTERN, given to SCAN as MATCH (`*` scans without MATCH). */
  readonly keyPattern: string;
  readonly leadership: LeadershipView;
  readonly keys: KeyspaceKeys;
  /** This worker process: names its probe keys. */
  readonly instanceId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
  /** EXPIRY_TRACK_MAX_KEYS. */
  readonly maxKeys: number;
  /** EXPIRY_SCAN_KEYS_PER_S. */
  readonly scanKeysPerS: number;
  /** How often the TrackedKeys gauge is published. @default 1000 */
  readonly gaugeIntervalMs?: number;
  /**
   * Value capture (CAPTURE_VALUES, issue 14; value-capture.ts): the settings; absent when values are
   * not captured (events then say `capture-off`). @default none
   */
  readonly capture?: {
    /** EXPIRY_READ_AHEAD_MS. */
    readonly readAheadMs: number;
    /** VALUE_MAX_BYTES. */
    readonly maxBytes: number;
    /** VALUE_BUDGET_BYTES. */
    readonly budgetBytes: number;
  };
}

export class PreciseExpiry {
  private readonly index: DeadlineIndex;
  private readonly toucher: ExpiryToucher;
  private readonly tracker: ExpiryTracker;
  private readonly clocks: PrimaryClocks;
  private readonly scanner: KeyspaceScanner;
  private readonly probe: ExpireEventProbe;
  /** Primaries without PEXPIRETIME. */
  private readonly nativePrimaries = new Set<string>();
  private readonly capture:
    | { readonly stage: ValueCapture; readonly held: HeldValues; readonly reporter: ValueCaptureReporter }
    | undefined;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(private readonly options: PreciseExpiryOptions) {
    const { clock, logger, leadership } = options;
    this.index = new DeadlineIndex({ maxKeys: options.maxKeys });
    // Touches: one key-deadlines call per primary on its scan connection (due keys reach Redis at
    // once); lookups: pipelined there (cheaper for the primary); the Cluster client key by key for
    // whatever that could not answer (node-deadlines.ts).
    const byNode = (oneCommand: boolean) =>
      nodeDeadlines({
        ownerOf: (key) => this.clocks.ownerOf(key),
        onNode: (nodeId, keys) => this.scanner.on(nodeId, (c) => c.deadlines(keys, oneCommand)),
        fallback: clusterDeadlines(options.cluster),
      });
    const touches = byNode(true);
    const lookups = byNode(false);
    this.scanner = new KeyspaceScanner({
      connect: (node) => new RedisScanConnection(node, options.redis, logger),
      accepts: options.accepts,
      isTracked: (key) => this.index.has(key.toString('latin1')),
      match: options.keyPattern === '*' ? undefined : options.keyPattern,
      onDeadline: (key, deadlineMs) => this.tracker.noteDeadline(key, deadlineMs),
      clock,
      logger,
      keysPerS: options.scanKeysPerS,
      // The first pass over a primary is the readiness signal: every key set before this worker
      // started is tracked (or refused for capacity) once it completed. Later passes at debug.
      onPassComplete: (nodeId, pass, keysScanned, durationMs) => {
        const fields = {
          nodeId,
          round: pass,
          keysScanned,
          trackedKeys: this.index.size,
          durationMs: Math.round(durationMs),
        };
        if (pass === 1) logger.info('expiry.scan_completed', fields);
        else logger.debug('expiry.scan_completed', fields);
      },
      onUnsupported: (node) => {
        this.nativePrimaries.add(node.id);
        logger.warn('expiry.native_fallback', {
          node: nodeAddress(node),
          nodeId: node.id,
          reason: 'no-pexpiretime',
        });
        this.publishNativeGauge();
      },
    });
    this.probe = new ExpireEventProbe({
      keys: options.keys,
      instanceId: options.instanceId,
      write: (key, ttlMs) => options.cluster.set(key, '1', 'PX', ttlMs),
      clock,
      logger,
      onChange: () => this.publishNativeGauge(),
    });
    this.clocks = new PrimaryClocks({ clock, logger, readTime: (nodeId) => this.scanner.time(nodeId) });
    const offsetForKey = (key: string) => this.clocks.offsetForKey(key);
    this.capture = options.capture && this.createCapture(options.capture, offsetForKey);
    this.toucher = new ExpiryToucher({
      index: this.index,
      clock,
      touch: touches,
      offsetForKey,
      isLeader: () => leadership.current(clock.monotonicMs()) !== undefined,
      ...(this.capture ? { readAhead: this.capture.stage } : {}),
    });
    this.tracker = new ExpiryTracker({
      index: this.index,
      toucher: this.toucher,
      accepts: options.accepts,
      lookup: lookups,
      offsetForKey,
    });
  }

  private createCapture(
    settings: NonNullable<PreciseExpiryOptions['capture']>,
    offsetForKey: (key: string) => number,
  ) {
    const { clock, logger, metrics } = this.options;
    // Written as 0 in quiet flushes (ValuesMissing: its total; a Reason appears once counted), so a
    // quiet period shows as 0, not as missing data. Declared only with capture on: no data then says
    // capture is off (CAPTURE_VALUES=false), not that nothing expired.
    metrics.declareCounters(['ValuesCaptured', 'ValuesMissing', 'ValuesReleased']);
    const reporter = new ValueCaptureReporter({
      logger,
      metrics,
      holdTimeoutMs: VALUE_CAPTURE_DEFAULTS.holdTimeoutMs,
    });
    const held = new HeldValues({
      budgetBytes: settings.budgetBytes,
      clock,
      offsetForKey,
      onReleased: (count, bytes) => reporter.released(count, bytes),
    });
    const stage = new ValueCapture({
      reader: new ValueReader({
        cluster: this.options.cluster,
        maxBytes: settings.maxBytes,
        nodes: {
          ownerOf: (key) => this.clocks.ownerOf(key),
          read: (nodeId, args) => this.scanner.on(nodeId, (c) => c.readValues(args)),
        },
      }),
      held,
      clock,
      touchAtFor: (key, deadlineMs) => leaderTouchAtMs(deadlineMs, offsetForKey(key)),
      trackedDeadlineOf: (key) => this.index.deadlineOf(key),
      readAheadMs: settings.readAheadMs,
      maxBytes: settings.maxBytes,
    });
    return { stage, held, reporter };
  }

  /**
   * The processor's side (Processor `takeValue`), when `event`'s handler call starts: its value, or
   * why there is none; counted (ValuesCaptured, ValuesMissing by reason).
   */
  takeValue(event: ExpiryEvent): CapturedValue {
    const capture = this.capture;
    if (capture === undefined) return CAPTURE_OFF;
    const outcome = capture.stage.take(event.key.toString('latin1'), event.deadlineMs, event.deadlineLocalMs);
    capture.reporter.handedOut(outcome);
    return outcome;
  }

  /**
   * The processor's side (Processor `valueReady`), before `event`'s handler call starts: a promise
   * while the read of its value is still out (value-capture.ts `whenRead`), undefined otherwise.
   */
  valueReady(event: ExpiryEvent): Promise<void> | undefined {
    // Per event, before every call: the key's latin1 text only while some read is out.
    if (this.capture === undefined || event.deadlineMs === undefined || !this.capture.stage.readsOut)
      return undefined;
    return this.capture.stage.whenRead(event.key.toString('latin1'), event.deadlineMs);
  }

  /** NativeExpiryPrimaries: primaries without PEXPIRETIME, or found publishing no `expire` events. */
  private publishNativeGauge(): void {
    const native = new Set([...this.nativePrimaries, ...this.probe.silentPrimaries()]);
    this.options.metrics.gauge('NativeExpiryPrimaries', native.size, 'Count');
  }

  /** Keys tracked now. */
  get trackedKeys(): number {
    return this.index.size;
  }

  /** An `expire` event from the primary `nodeId` (the project's own keys included: they prove events flow). */
  onTtlSet(nodeId: string, key: Buffer): void {
    this.probe.noteEvent(nodeId);
    this.tracker.noteTtlSet(key);
  }

  /** The fan-in's side: `key` expired (see ExpiryTracker.takeDeadline). */
  takeDeadline(key: Buffer): TrackedDeadline | undefined {
    return this.tracker.takeDeadline(key);
  }

  /** Every discovery: the primaries to scan and the slot map for the clocks. */
  syncTopology(topology: Topology): void {
    const primaries = livePrimaries(topology);
    this.scanner.sync(primaries);
    this.clocks.update(topology);
    this.probe.sync(topology);
    for (const id of this.nativePrimaries)
      if (!primaries.some((p) => p.id === id)) this.nativePrimaries.delete(id);
  }

  /** The role changed: the toucher's timing depends on it, and only a leader holds values. */
  leadershipChanged(): void {
    const { leadership, clock } = this.options;
    this.capture?.stage.leadershipChanged(leadership.current(clock.monotonicMs()) !== undefined);
    this.toucher.arm();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.toucher.start();
    this.scanner.start();
    this.probe.start();
    const { metrics } = this.options;
    metrics.gauge('NativeExpiryPrimaries', 0, 'Count');
    const publishGauges = () => {
      metrics.gauge('TrackedKeys', this.index.size, 'Count');
      // What the budget (VALUE_BUDGET_BYTES) bounds: held values plus the room of reads in flight.
      const held = this.capture?.held;
      if (held) metrics.gauge('HeldValueBytes', held.heldBytes + held.reservedBytes, 'None');
    };
    publishGauges();
    this.gaugeTimer = setInterval(publishGauges, this.options.gaugeIntervalMs ?? 1000);
    this.gaugeTimer.unref();
  }

  /** Stops touching and scanning and closes the scan connections (the Cluster client is the caller's). */
  stop(): void {
    this.started = false;
    clearInterval(this.gaugeTimer);
    this.toucher.stop();
    this.scanner.stop();
    this.probe.stop();
    this.tracker.close();
    this.clocks.close();
    this.capture?.held.close();
    this.capture?.reporter.close();
  }
}
