import { type DecodedLine, decodeLogLine, loggedErrorMessage } from '../../core/log-decoder.ts';
import type { LogRecord } from '../../core/log-events.ts';
import { parseEmfLine } from '../../core/metrics.ts';
import { EventLedger, type LedgerTotals } from './event-ledger.ts';
import { ExpiryLag, type ExpiryLagSnapshot } from './expiry-lag.ts';
import { quantile } from './statistics.ts';
import { ValueStats, type ValueStatsSnapshot } from './value-stats.ts';

/**
 * What `npm start` shows, built only from what can be observed from outside the workers: their JSON
 * log lines (README.md, "Log events": `leader.*`, `subscription.*`, `topology.changed`, `key.processed`, EMF
 * documents), their process lifecycle, the reference subscribers' `expired` events and the generator's
 * counts. Pure: every input carries its time (wall-clock ms), so tests drive it without timers.
 */

export type WorkerState = 'starting' | 'running' | 'stopping' | 'exited';
export type WorkerRole = 'leader' | 'follower' | 'none';

export type LeadershipChangeKind = 'acquired' | 'released' | 'lost' | 'killed' | 'exited';

export interface LeadershipChange {
  readonly kind: LeadershipChangeKind;
  readonly atMs: number;
  readonly fencingToken?: number | undefined;
  readonly detail?: string | undefined;
}

export interface Handover {
  readonly from: string | undefined;
  readonly to: string;
  readonly fencingToken: number | undefined;
  readonly acquiredAtMs: number;
  /** How the previous leader ended; `initial` for the first leader of the run. */
  readonly cause: 'initial' | 'released' | 'lost' | 'killed' | 'exited' | 'overlap';
  /** Time without a leader: end of the previous leadership to this acquisition. */
  readonly gapMs: number | undefined;
}

export interface WorkerRow {
  readonly id: string;
  readonly pid: number | undefined;
  readonly state: WorkerState;
  readonly role: WorkerRole;
  readonly fencingToken: number | undefined;
  /** Primaries this worker is subscribed to (subscription.up/down, else its SubscribedPrimaries gauge). */
  readonly subscribedPrimaries: number | undefined;
  /** Primaries this worker knows of (its last topology.changed). */
  readonly knownPrimaries: number | undefined;
  readonly processed: number;
  readonly handlerFailures: number;
  readonly shed: number;
  readonly lastChange: LeadershipChange | undefined;
  readonly exit: string | undefined;
  readonly lastError: string | undefined;
}

export interface PrimaryRow {
  readonly node: string;
  /** Generator keys whose slot this primary owned when they were set. */
  readonly keysSet: number;
  /** Tracked `expired` events its reference subscriber received. */
  readonly published: number;
}

export interface Note {
  readonly atMs: number;
  readonly text: string;
  readonly level: 'info' | 'warn';
}

export interface StatusSnapshot {
  readonly nowMs: number;
  readonly startedAtMs: number;
  readonly settings: RunSettings;
  readonly leaders: readonly WorkerRow[];
  readonly workers: readonly WorkerRow[];
  readonly primaries: readonly PrimaryRow[];
  readonly totals: LedgerTotals;
  /** Per second over the last few seconds. */
  readonly rates: { readonly expected: number; readonly processed: number };
  /** Line arrival at the runner minus reference receipt, recent matched keys (ms). */
  readonly addedLatency: { readonly p50: number; readonly p99: number; readonly samples: number };
  /** Deadline -> handler of the generator's keys, tracked (the worker's `lagMs`) and native (expiry-lag.ts). */
  readonly expiryLag: ExpiryLagSnapshot;
  /** Values the handler calls got (`key.processed` value fields): counts, types, sizes; value-stats.ts. */
  readonly values: ValueStatsSnapshot;
  /** The `--volatile` background keys: loaded, and left after the deletion at the end (undefined before). */
  readonly volatileKeys: VolatileKeysState | undefined;
  readonly handovers: readonly Handover[];
  readonly generator: { readonly sent: number; readonly failed: number };
  readonly notes: readonly Note[];
}

export interface VolatileKeysState {
  readonly loaded: number;
  readonly left: number | undefined;
}

export interface RunSettings {
  readonly keysPerSecond: number;
  readonly keyTtlMs: number;
  readonly primaries: number;
  readonly replicasPerPrimary: number;
  readonly leaderName: string;
  /** How clients authenticate, shown in the views, e.g. `TLS, ACL users worker/check`; unset: plain text, default user. */
  readonly security?: string | undefined;
  /** `--volatile`: background keys with a 1 h TTL asked for (0 or unset: none). */
  readonly volatileKeys?: number | undefined;
}

interface WorkerRecord {
  id: string;
  pid: number | undefined;
  state: WorkerState;
  role: WorkerRole;
  fencingToken: number | undefined;
  subscribed: Set<string>;
  /** Subscribed nodes the worker last called replicas (subscribed in advance; not coverage). */
  replicas: Set<string>;
  sawSubscriptionEvents: boolean;
  subscribedGauge: number | undefined;
  knownPrimaries: number | undefined;
  processed: number;
  handlerFailures: number;
  shed: number;
  lastChange: LeadershipChange | undefined;
  exit: string | undefined;
  lastError: string | undefined;
  /** Signal the runner sent, so a death can be told apart from a crash. */
  signalled: string | undefined;
  exitedAtMs: number | undefined;
}

interface LeaderEnd {
  readonly workerId: string;
  readonly atMs: number;
  readonly cause: 'released' | 'lost' | 'killed' | 'exited';
}

export interface StatusModelOptions {
  readonly startedAtMs: number;
  readonly settings: RunSettings;
  /** Keys the ledger counts (the generator's prefix). */
  readonly isTrackedKey: (key: string) => boolean;
  readonly settleMs?: number;
  /** Exited workers kept in the table. */
  readonly exitedRowsKept?: number;
  readonly notesKept?: number;
  /** Called for every note as it is made (the plain view prints them at once). */
  readonly onNote?: (note: Note) => void;
}

const RATE_WINDOW_MS = 5000;
/**
 * A release logged at most this long after the successor's acquisition counts as before it: the two
 * `time` fields come from two processes' clocks reads around one Redis round trip.
 */
const SEQUENTIAL_TOLERANCE_MS = 20;

function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** The `time` field of a log line as wall-clock ms, else `fallbackMs` (arrival). */
function lineTime(record: LogRecord, fallbackMs: number): number {
  const parsed = Date.parse(record.time);
  return Number.isNaN(parsed) ? fallbackMs : parsed;
}

export class StatusModel {
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly primaries = new Map<string, { keysSet: number; published: number }>();
  private readonly ledger: EventLedger;
  private readonly lag = new ExpiryLag();
  private readonly values = new ValueStats();
  private volatile: VolatileKeysState | undefined;
  private readonly notes: Note[] = [];
  private readonly handovers: Handover[] = [];
  private readonly history: { atMs: number; expected: number; processed: number }[] = [];
  private settings: RunSettings;
  private lastLeaderEnd: LeaderEnd | undefined;
  private generator = { sent: 0, failed: 0 };
  private readonly exitedRowsKept: number;
  private readonly notesKept: number;

  constructor(private readonly options: StatusModelOptions) {
    this.settings = options.settings;
    this.ledger = new EventLedger({
      isTracked: options.isTrackedKey,
      ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
    });
    this.exitedRowsKept = options.exitedRowsKept ?? 3;
    this.notesKept = options.notesKept ?? 8;
  }

  updateSettings(settings: Partial<RunSettings>): void {
    this.settings = { ...this.settings, ...settings };
  }

  note(text: string, atMs: number, level: Note['level'] = 'info'): void {
    const note: Note = { atMs, text, level };
    this.notes.push(note);
    this.options.onNote?.(note);
    if (this.notes.length > this.notesKept) this.notes.splice(0, this.notes.length - this.notesKept);
  }

  private record(id: string): WorkerRecord {
    let worker = this.workers.get(id);
    if (!worker) {
      worker = {
        id,
        pid: undefined,
        state: 'starting',
        role: 'none',
        fencingToken: undefined,
        subscribed: new Set(),
        replicas: new Set(),
        sawSubscriptionEvents: false,
        subscribedGauge: undefined,
        knownPrimaries: undefined,
        processed: 0,
        handlerFailures: 0,
        shed: 0,
        lastChange: undefined,
        exit: undefined,
        lastError: undefined,
        signalled: undefined,
        exitedAtMs: undefined,
      };
      this.workers.set(id, worker);
    }
    return worker;
  }

  workerSpawned(id: string, pid: number | undefined, atMs: number): void {
    const worker = this.record(id);
    worker.pid = pid;
    worker.state = 'starting';
    this.note(`${id} started (pid ${pid ?? '?'})`, atMs);
  }

  /** The runner sent `signal` to the worker (k: SIGKILL, t: SIGTERM, shutdown). */
  workerSignalled(id: string, signal: string, atMs: number): void {
    const worker = this.workers.get(id);
    if (!worker) return;
    worker.signalled = signal;
    if (worker.state !== 'exited') worker.state = 'stopping';
    this.note(`sent ${signal} to ${id}${worker.role === 'leader' ? ' (the leader)' : ''}`, atMs);
    if (signal === 'SIGKILL' && worker.role === 'leader') {
      // A SIGKILLed leader says nothing more: its leadership ends now, as far as anyone can tell.
      this.endLeadership(worker, 'killed', atMs, undefined);
    }
  }

  workerExited(id: string, code: number | null, signal: string | null, atMs: number): void {
    const worker = this.workers.get(id);
    if (!worker) return;
    worker.exit = signal ?? `code ${code ?? '?'}`;
    worker.exitedAtMs = atMs;
    if (worker.role === 'leader') this.endLeadership(worker, 'exited', atMs, worker.exit);
    worker.state = 'exited';
    worker.role = 'none';
    worker.subscribed.clear();
    worker.replicas.clear();
    worker.subscribedGauge = undefined;
    const expected = worker.signalled !== undefined || code === 0;
    this.note(`${id} exited (${worker.exit})`, atMs, expected ? 'info' : 'warn');
  }

  workerStderr(id: string, line: string, atMs: number): void {
    const text = line.trim();
    if (text === '') return;
    const worker = this.record(id);
    worker.lastError = text.slice(0, 200);
    this.note(`${id} stderr: ${text.slice(0, 160)}`, atMs, 'warn');
  }

  /**
   * One stdout line of a worker, read through the catalog's decoder (core/log-decoder.ts). Lines that
   * are not JSON objects are ignored (returns false); so are lines of an event outside the catalog,
   * except that one at level error becomes a note.
   */
  workerLine(id: string, line: string, atMs: number): boolean {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) return false;
    return this.workerDecoded(id, decodeLogLine(trimmed), trimmed, atMs);
  }

  /** A line decoded by the caller (the bench decodes each line once); `line` is its text. */
  workerDecoded(id: string, decoded: DecodedLine, line: string, atMs: number): boolean {
    switch (decoded.kind) {
      case 'metrics':
        this.applyMetrics(this.record(id), line);
        return true;
      case 'event':
        this.applyEvent(this.record(id), decoded.record, atMs);
        return true;
      case 'invalid': {
        const value = decoded.value;
        if (value === undefined || typeof value.event !== 'string') return false;
        if (value.level === 'error') this.noteError(this.record(id), value.event, value.error, atMs);
        return false;
      }
    }
  }

  private applyMetrics(worker: WorkerRecord, line: string): void {
    const documents = parseEmfLine(line);
    if (!documents) return;
    for (const document of documents) {
      const subscribed = asNumber(document.fields.SubscribedPrimaries);
      if (subscribed !== undefined) worker.subscribedGauge = subscribed;
    }
  }

  private applyEvent(worker: WorkerRecord, record: LogRecord, atMs: number): void {
    switch (record.event) {
      case 'worker.started':
        if (worker.state === 'starting') worker.state = 'running';
        if (worker.role === 'none') worker.role = 'follower';
        return;
      case 'worker.stopped':
        worker.state = 'stopping';
        return;
      case 'leader.acquired':
        this.acquire(worker, record.fencingToken, lineTime(record, atMs));
        return;
      case 'leader.released':
        this.endLeadership(worker, 'released', lineTime(record, atMs), undefined);
        return;
      case 'leader.lost':
        this.endLeadership(worker, 'lost', lineTime(record, atMs), record.reason);
        return;
      case 'subscription.up':
      case 'subscription.down': {
        const node = record.node;
        worker.sawSubscriptionEvents = true;
        if (record.event === 'subscription.up') worker.subscribed.add(node);
        else worker.subscribed.delete(node);
        if (record.role === 'replica') worker.replicas.add(node);
        else worker.replicas.delete(node);
        if (worker.state === 'starting') worker.state = 'running';
        return;
      }
      case 'subscription.role_changed': {
        // A replica subscribed in advance was promoted (or a primary demoted): coverage counts primaries.
        const node = record.node;
        if (record.role === 'replica') worker.replicas.add(node);
        else worker.replicas.delete(node);
        return;
      }
      case 'topology.changed': {
        worker.knownPrimaries = record.primaries.length;
        return;
      }
      case 'key.processed': {
        worker.processed++;
        this.ledger.processed(record.key, atMs);
        this.lag.processed(record.key, atMs, record.lagMs);
        this.values.processed(record.valueType, record.valueBytes, record.valueMissing);
        return;
      }
      case 'handler.failed':
        worker.handlerFailures++;
        return;
      case 'events.shed':
        worker.shed += record.count;
        this.note(`${worker.id} shed ${record.count} events (${record.reason})`, atMs, 'warn');
        return;
      default:
        if (record.level === 'error') {
          this.noteError(worker, record.event, 'error' in record ? record.error : undefined, atMs);
        }
    }
  }

  private noteError(worker: WorkerRecord, event: string, error: unknown, atMs: number): void {
    const text = loggedErrorMessage(error);
    const message = text !== undefined ? `: ${text}` : '';
    worker.lastError = `${event}${message}`.slice(0, 200);
    this.note(`${worker.id} ${event}${message.slice(0, 160)}`, atMs, 'warn');
  }

  private acquire(worker: WorkerRecord, fencingToken: number | undefined, atMs: number): void {
    const others = [...this.workers.values()].filter((w) => w !== worker && w.role === 'leader');
    let handover: Handover;
    if (others.length > 0) {
      handover = {
        from: others.map((w) => w.id).join(','),
        to: worker.id,
        fencingToken,
        acquiredAtMs: atMs,
        cause: 'overlap',
        gapMs: undefined,
      };
      this.note(`${worker.id} acquired leadership while ${handover.from} still claims it`, atMs, 'warn');
    } else if (this.lastLeaderEnd) {
      handover = {
        from: this.lastLeaderEnd.workerId,
        to: worker.id,
        fencingToken,
        acquiredAtMs: atMs,
        cause: this.lastLeaderEnd.cause,
        gapMs: Math.max(0, atMs - this.lastLeaderEnd.atMs),
      };
    } else {
      handover = {
        from: undefined,
        to: worker.id,
        fencingToken,
        acquiredAtMs: atMs,
        cause: 'initial',
        gapMs: undefined,
      };
    }
    this.lastLeaderEnd = undefined;
    this.handovers.push(handover);
    if (this.handovers.length > 50) this.handovers.shift();
    worker.role = 'leader';
    worker.fencingToken = fencingToken;
    worker.lastChange = { kind: 'acquired', atMs, fencingToken };
    if (worker.state === 'starting') worker.state = 'running';
    const gap =
      handover.gapMs !== undefined
        ? ` ${Math.round(handover.gapMs)} ms after ${handover.from} ${handover.cause}`
        : '';
    this.note(`${worker.id} acquired leadership (token ${fencingToken ?? '?'})${gap}`, atMs);
  }

  private endLeadership(
    worker: WorkerRecord,
    kind: 'released' | 'lost' | 'killed' | 'exited',
    atMs: number,
    detail: string | undefined,
  ): void {
    if (worker.role !== 'leader') return;
    worker.role = worker.state === 'exited' || kind === 'killed' || kind === 'exited' ? 'none' : 'follower';
    worker.lastChange = { kind, atMs, fencingToken: worker.fencingToken, detail };
    const lastIndex = this.handovers.length - 1;
    const last = this.handovers[lastIndex];
    if (
      kind === 'released' &&
      last?.cause === 'overlap' &&
      last.from === worker.id &&
      atMs <= last.acquiredAtMs + SEQUENTIAL_TOLERANCE_MS
    ) {
      // Lines of two processes arrive in any order: the successor's `leader.acquired` was read before
      // this `leader.released`, but the release came first (or within the tolerance). Not an overlap.
      this.handovers[lastIndex] = {
        ...last,
        cause: 'released',
        gapMs: Math.max(0, last.acquiredAtMs - atMs),
      };
      this.note(`${worker.id} leadership released (read after ${last.to}'s acquisition; sequential)`, atMs);
      return;
    }
    this.lastLeaderEnd = { workerId: worker.id, atMs, cause: kind };
    this.note(
      `${worker.id} leadership ${kind}${detail ? ` (${detail})` : ''}`,
      atMs,
      kind === 'lost' ? 'warn' : 'info',
    );
  }

  /** A reference subscriber received `key` from `node`. */
  referenceEvent(key: string, node: string, atMs: number): void {
    if (!this.ledger.expected(key, atMs)) return;
    this.primary(node).published++;
  }

  /** The generator set a key whose slot `node` owned. */
  keySet(node: string | undefined, count = 1): void {
    this.primary(node ?? '(unknown)').keysSet += count;
  }

  /** The generator set `key` with this absolute deadline (wall ms, the clock of `atMs` everywhere here). */
  keyDeadline(key: string, deadlineMs: number): void {
    this.lag.keySet(key, deadlineMs);
  }

  /** The `--volatile` background keys: how many were loaded, and how many were left after deleting them. */
  volatileKeys(state: VolatileKeysState): void {
    this.volatile = state;
  }

  /** Primaries the reference subscribers follow; rows for others are kept with their counts. */
  knownPrimaries(nodes: readonly string[]): void {
    for (const node of nodes) this.primary(node);
  }

  generatorTotals(sent: number, failed: number): void {
    this.generator = { sent, failed };
  }

  private primary(node: string): { keysSet: number; published: number } {
    let row = this.primaries.get(node);
    if (!row) {
      row = { keysSet: 0, published: 0 };
      this.primaries.set(node, row);
    }
    return row;
  }

  /** Settles every key still waiting for its other side (end of a run: unprocessed keys are missing). */
  settleAll(): void {
    this.ledger.settle(Number.POSITIVE_INFINITY);
  }

  totals(nowMs: number): LedgerTotals {
    this.ledger.settle(nowMs);
    return this.ledger.totals();
  }

  private row(worker: WorkerRecord): WorkerRow {
    return {
      id: worker.id,
      pid: worker.pid,
      state: worker.state,
      role: worker.role,
      fencingToken: worker.fencingToken,
      subscribedPrimaries: worker.sawSubscriptionEvents
        ? [...worker.subscribed].filter((node) => !worker.replicas.has(node)).length
        : worker.subscribedGauge,
      knownPrimaries: worker.knownPrimaries,
      processed: worker.processed,
      handlerFailures: worker.handlerFailures,
      shed: worker.shed,
      lastChange: worker.lastChange,
      exit: worker.exit,
      lastError: worker.lastError,
    };
  }

  snapshot(nowMs: number): StatusSnapshot {
    const totals = this.totals(nowMs);
    this.history.push({ atMs: nowMs, expected: totals.expected, processed: totals.processed });
    while (this.history.length > 2 && (this.history[0]?.atMs ?? nowMs) < nowMs - RATE_WINDOW_MS)
      this.history.shift();
    const oldest = this.history[0];
    const spanS = oldest ? (nowMs - oldest.atMs) / 1000 : 0;
    const rates =
      oldest && spanS > 0
        ? {
            expected: (totals.expected - oldest.expected) / spanS,
            processed: (totals.processed - oldest.processed) / spanS,
          }
        : { expected: 0, processed: 0 };
    const all = [...this.workers.values()];
    const live = all.filter((w) => w.state !== 'exited');
    const exited = all
      .filter((w) => w.state === 'exited')
      .sort((a, b) => (b.exitedAtMs ?? 0) - (a.exitedAtMs ?? 0))
      .slice(0, this.exitedRowsKept);
    const latencies = this.ledger.recentLatencies();
    return {
      nowMs,
      startedAtMs: this.options.startedAtMs,
      settings: this.settings,
      leaders: live.filter((w) => w.role === 'leader').map((w) => this.row(w)),
      workers: [...live, ...exited].map((w) => this.row(w)),
      primaries: [...this.primaries.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([node, row]) => ({ node, ...row })),
      totals,
      rates,
      addedLatency: {
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        samples: latencies.length,
      },
      expiryLag: this.lag.snapshot(nowMs),
      values: this.values.snapshot(),
      volatileKeys: this.volatile,
      handovers: [...this.handovers],
      generator: this.generator,
      notes: [...this.notes],
    };
  }
}
