import type { Clock } from '../../core/clock.ts';
import { EXPIRE_EVENT_PROBE_DEFAULTS } from '../../core/defaults.ts';
import { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import { nodeAddress, type Topology } from '../../core/topology.ts';

/**
 * Does each primary publish `expire` events (notify-keyspace-events with `g`)? On-time expiry learns
 * most deadlines from them; a primary without them is handled as with native expiry (its keys are
 * found by the scan only, so keys set between two passes with shorter TTLs expire late). Issue 13,
 * "Fallback, per primary and at run time".
 *
 * - Any `expire` event from a primary proves they flow (`noteEvent`); the project's own keys with a
 *   TTL (the lease members, the coverage hash) send some on several primaries every second.
 * - A primary silent for `silenceMs` is probed: this worker writes its probe key (a key of its own,
 *   `keys.expireProbe`, under a partition tag whose slot is on that primary) with a TTL of
 *   `probeTtlMs`, and waits `probeTimeoutMs` for the key's `expire` event from that primary.
 * - No event in time: the primary is `silent`, logged once (`expiry.expire_events_missing`, warn)
 *   and reported through `onChange`; the first event that arrives afterwards makes it `flowing`
 *   again (`expiry.expire_events_flowing`, info).
 */
export interface ExpireEventProbeOptions {
  readonly keys: KeyspaceKeys;
  /** This worker process (the probe key's suffix: processes never probe each other's keys). */
  readonly instanceId: string;
  /** SET key with PX ttlMs, on the primary owning the key's slot. */
  readonly write: (key: string, ttlMs: number) => Promise<unknown>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A primary changed between flowing and silent. */
  readonly onChange: (nodeId: string, flowing: boolean) => void;
  /** Silence after which a primary is probed. @default 15000 */
  readonly silenceMs?: number;
  /** Wait for the probe's event. @default 5000 */
  readonly probeTimeoutMs?: number;
  /** The probe key's TTL (it vanishes by itself). @default 60000 */
  readonly probeTtlMs?: number;
  /** How often the primaries are checked. @default 1000 */
  readonly checkIntervalMs?: number;
}

interface Target {
  address: string;
  probeKey: string;
  lastEventMono: number;
  probeSentMono: number | undefined;
  flowing: boolean;
}

export class ExpireEventProbe {
  private readonly targets = new Map<string, Target>();
  private timer: NodeJS.Timeout | undefined;
  private readonly settings: { readonly [K in keyof typeof EXPIRE_EVENT_PROBE_DEFAULTS]: number };

  constructor(private readonly options: ExpireEventProbeOptions) {
    this.settings = {
      silenceMs: options.silenceMs ?? EXPIRE_EVENT_PROBE_DEFAULTS.silenceMs,
      probeTimeoutMs: options.probeTimeoutMs ?? EXPIRE_EVENT_PROBE_DEFAULTS.probeTimeoutMs,
      probeTtlMs: options.probeTtlMs ?? EXPIRE_EVENT_PROBE_DEFAULTS.probeTtlMs,
      checkIntervalMs: options.checkIntervalMs ?? EXPIRE_EVENT_PROBE_DEFAULTS.checkIntervalMs,
    };
  }

  /** The primaries to watch, with the slots a probe key must hash into. */
  sync(topology: Topology): void {
    const now = this.options.clock.monotonicMs();
    const seen = new Set<string>();
    for (const shard of topology.shards) {
      const primary = shard.primary;
      if (primary === undefined || shard.slots.length === 0) continue;
      seen.add(primary.id);
      if (this.targets.has(primary.id)) continue;
      const { keys, instanceId } = this.options;
      const index = KeyspaceKeys.findIndexOnSlots(shard.slots, (i) => keys.partitionTag(i));
      this.targets.set(primary.id, {
        address: nodeAddress(primary),
        probeKey: keys.expireProbe(index, instanceId),
        // A new primary gets the silence period before its first probe, like one just started.
        lastEventMono: now,
        probeSentMono: undefined,
        flowing: true,
      });
    }
    for (const id of this.targets.keys()) if (!seen.has(id)) this.targets.delete(id);
  }

  /** An `expire` event from the primary `nodeId` (any key). */
  noteEvent(nodeId: string): void {
    const target = this.targets.get(nodeId);
    if (target === undefined) return;
    target.lastEventMono = this.options.clock.monotonicMs();
    target.probeSentMono = undefined;
    if (!target.flowing) {
      target.flowing = true;
      this.options.logger.info('expiry.expire_events_flowing', { node: target.address, nodeId });
      this.options.onChange(nodeId, true);
    }
  }

  /** Primaries found silent (their keys are handled as with native expiry). */
  silentPrimaries(): string[] {
    return [...this.targets].filter(([, t]) => !t.flowing).map(([id]) => id);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), this.settings.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const now = this.options.clock.monotonicMs();
    const { silenceMs, probeTimeoutMs, probeTtlMs } = this.settings;
    for (const [nodeId, target] of this.targets) {
      if (target.probeSentMono !== undefined) {
        if (now - target.probeSentMono < probeTimeoutMs) continue;
        target.probeSentMono = undefined;
        target.lastEventMono = now; // probe again after another silence period
        if (target.flowing) {
          target.flowing = false;
          this.options.logger.warn('expiry.expire_events_missing', {
            node: target.address,
            nodeId,
            waitedMs: probeTimeoutMs,
          });
          this.options.onChange(nodeId, false);
        }
        continue;
      }
      if (now - target.lastEventMono < silenceMs) continue;
      target.probeSentMono = now;
      this.options.write(target.probeKey, probeTtlMs).catch((error: unknown) => {
        // A write that failed proves nothing either way: probe again after another silence period.
        if (target.probeSentMono === now) {
          target.probeSentMono = undefined;
          target.lastEventMono = this.options.clock.monotonicMs();
        }
        this.options.logger.debug('expiry.probe_failed', { nodeId, error });
      });
    }
  }
}
