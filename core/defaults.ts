/**
 * The defaults of the worker's and the Lambda's components, each written once, one object per
 * component. core/config.ts takes the configuration defaults (the README's "Configuration" table) from
 * here, and each component takes its option defaults from its object. They live in core because
 * core/config.ts, which the Lambda shares, must not import worker modules (dependencies point from
 * worker to core). test/unit/core/config-defaults-docs.test.ts checks the README table against them.
 */

/** Settings every program shares. */
export const SHARED_DEFAULTS = {
  /**
   * LEADER_NAME: names the lease family.
   * @default 'default'
   */
  leaderName: 'default',
  /**
   * LOG_LEVEL.
   * @default 'info'
   */
  logLevel: 'info',
  /**
   * METRICS_NAMESPACE: CloudWatch namespace of the EMF metrics.
   * @default 'KeyspaceLeader'
   */
  metricsNamespace: 'KeyspaceLeader',
  /**
   * REDIS_TLS.
   * @default false
   */
  redisTls: false,
} as const;

/** The lease and its election (worker/leader/*): README "Lease timings and why these defaults". */
export const LEASE_DEFAULTS = {
  /**
   * LEASE_TTL_MS: the lease's time to live.
   * @default 3000
   */
  leaseTtlMs: 3000,
  /**
   * LEASE_RENEW_INTERVAL_MS: how often the leader extends the lease.
   * @default 1000
   */
  leaseRenewIntervalMs: 1000,
  /**
   * LEASE_RENEW_DEADLINE_MS: the leader steps down when no renewal succeeded for this long.
   * @default 2000
   */
  leaseRenewDeadlineMs: 2000,
  /**
   * LEASE_RETRY_MS: a follower's retry period (with jitter).
   * @default 250
   */
  leaseRetryMs: 250,
} as const;

/** The processor (worker/expiry/processor.ts) and the handler it calls. */
export const PROCESSOR_DEFAULTS = {
  /**
   * HANDLER: the built-in handler that writes `key.processed` lines.
   * @default 'log'
   */
  handler: 'log',
  /**
   * HANDLER_CONCURRENCY: handler calls in flight at most.
   * @default 16
   */
  handlerConcurrency: 16,
  /**
   * HANDLER_QUEUE_CAPACITY: events the processor queue holds at most.
   * @default 10000
   */
  handlerQueueCapacity: 10_000,
  /**
   * HANDLER_TIMEOUT_MS: per-call timeout (the call's signal is aborted).
   * @default 5000
   */
  handlerTimeoutMs: 5000,
  /**
   * PROCESSED_LOG: every completed call gets a `key.processed` line.
   * @default 'all'
   */
  processedLog: 'all',
  /**
   * `events.shed` lines per reason are written at most this often (counts add up in between).
   * @default 1000
   */
  shedLogIntervalMs: 1000,
  /**
   * Handler calls are started for at most this long per turn of the event loop (worker/expiry/processor.ts):
   * timers (lease renewals) and socket reads run between slices however long the queue.
   * @default 2
   */
  sliceMs: 2,
  /**
   * The head of the processor's queue waits at most this long for its value's read still out
   * (value capture; worker/expiry/processor.ts `valueWaitMs`), below the clients' 2 s command timeout
   * that bounds the read itself.
   * @default 1000
   */
  valueWaitMs: 1000,
} as const;

/** The key filter (worker/expiry/key-pattern.ts). */
export const KEY_FILTER_DEFAULTS = {
  /**
   * KEY_PATTERN: a Redis glob; only matching keys reach the handler.
   * @default '*'
   */
  keyPattern: '*',
} as const;

/** The health endpoint (worker/health-server.ts). */
export const HEALTH_DEFAULTS = {
  /**
   * HEALTH_PORT: `GET /healthz` on 127.0.0.1; 0 disables it.
   * @default 8081
   */
  healthPort: 8081,
} as const;

/** The worker process's threads (worker/helper-threads.ts). */
export const THREAD_DEFAULTS = {
  /**
   * The nice value the worker gives its threads other than the main one (V8's compiler and GC
   * helpers) at start: Chromium's background priority. Not configurable.
   * @default 10
   */
  helperThreadNice: 10,
} as const;

/** On-time expiry (worker/expiry/: deadline-index.ts, expiry-tracker.ts, expiry-toucher.ts, keyspace-scanner.ts). */
export const PRECISE_EXPIRY_DEFAULTS = {
  /**
   * PRECISE_EXPIRY: track the deadlines of volatile keys and make each expire at its deadline (the
   * worker), and enforce `E`, `g` and `x` in notify-keyspace-events (the Lambda).
   * @default true
   */
  preciseExpiry: true,
  /**
   * EXPIRY_TRACK_MAX_KEYS: keys the deadline index holds at most; over it the farthest deadlines are dropped.
   * @default 1000000
   */
  expiryTrackMaxKeys: 1_000_000,
  /**
   * EXPIRY_SCAN_KEYS_PER_S: keys the paced keyspace scan reads per second, all primaries together.
   * @default 5000
   */
  expiryScanKeysPerS: 5000,
} as const;

/** The toucher (worker/expiry/expiry-toucher.ts): docs/precise-expiry.md, "Touch rules". */
export const EXPIRY_TOUCHER_DEFAULTS = {
  /**
   * A follower's backstop touch comes this long after the leader's time.
   * @default 500
   */
  followerDelayMs: 500,
  /**
   * Shortest delay before a key found alive is touched again (no spinning on a bad clock offset).
   * @default 10
   */
  minStepMs: 10,
  /**
   * First delay after a touch found the key gone without its event, or failed (doubling from here).
   * @default 250
   */
  goneRetryMs: 250,
  /**
   * Cap of the doubling retry delay.
   * @default 2000
   */
  goneRetryMaxMs: 2000,
  /**
   * Touches of a key reported gone before it is dropped (a DEL sends no `expired`).
   * @default 12
   */
  goneAttempts: 12,
  /**
   * Keys per touch batch.
   * @default 1000
   */
  batchSize: 1000,
  /**
   * Touch batches in flight at most.
   * @default 4
   */
  maxBatchesInFlight: 4,
} as const;

/** The tracker (worker/expiry/expiry-tracker.ts): lookups of the keys `expire` events name. */
export const EXPIRY_TRACKER_DEFAULTS = {
  /**
   * Keys per PEXPIRETIME lookup batch.
   * @default 1000
   */
  batchSize: 1000,
  /**
   * Lookup batches in flight at most.
   * @default 4
   */
  maxBatchesInFlight: 4,
  /**
   * Keys waiting for a lookup at most; beyond it they are dropped, counted (the scan finds them).
   * @default 100000
   */
  maxPending: 100_000,
} as const;

/** The keyspace scan (worker/expiry/keyspace-scanner.ts). */
export const KEYSPACE_SCANNER_DEFAULTS = {
  /**
   * SCAN COUNT per step.
   * @default 100
   */
  stepCount: 100,
  /**
   * Wait after a failed step.
   * @default 1000
   */
  failureDelayMs: 1000,
  /**
   * Shortest time from the start of one pass over a primary to the start of the next.
   * @default 10000
   */
  passIntervalMs: 10_000,
} as const;

/** Each primary's clock offset (worker/expiry/primary-clocks.ts). */
export const PRIMARY_CLOCKS_DEFAULTS = {
  /**
   * TIME round trips per estimate; the shortest is kept.
   * @default 3
   */
  samples: 3,
  /**
   * Every primary's offset is estimated again this often (drift).
   * @default 60000
   */
  reestimateMs: 60_000,
} as const;

/** The probe of each primary's `expire` events (worker/expiry/expire-event-probe.ts). */
export const EXPIRE_EVENT_PROBE_DEFAULTS = {
  /**
   * A primary silent this long is probed.
   * @default 15000
   */
  silenceMs: 15_000,
  /**
   * Wait for the probe key's `expire` event.
   * @default 5000
   */
  probeTimeoutMs: 5000,
  /**
   * The probe key's TTL (it vanishes by itself).
   * @default 60000
   */
  probeTtlMs: 60_000,
  /**
   * How often the primaries are checked.
   * @default 1000
   */
  checkIntervalMs: 1000,
} as const;

/** Replay across a change of leader (worker/replay/*). */
export const REPLAY_DEFAULTS = {
  /**
   * REPLAY_WINDOW_MS: how long every worker keeps events for a replay; 0: a follower keeps nothing
   * (no replay; the leader still numbers with the marks, so ids mean the same).
   * @default 15000
   */
  replayWindowMs: 15_000,
  /**
   * REPLAY_MAX_EVENTS: memory bound of the window, events per primary.
   * @default 100000
   */
  replayMaxEvents: 100_000,
  /**
   * How often the leader records its progress: bounds the duplicates of a crash to ~this much of events.
   * @default 10
   */
  markIntervalMs: 10,
  /**
   * Fingerprints of the last events a mark carries, to align it with a successor's window.
   * @default 8
   */
  markTailLength: 8,
  /**
   * Bound on the read of the marks at acquisition.
   * @default 1000
   */
  markReadTimeoutMs: 1000,
  /**
   * Bound on each copy of the marks, on its own: a hung copy costs that copy, never the others.
   * @default 500
   */
  markCopyTimeoutMs: 500,
  /**
   * Events closer than this before a mark are replayed when the mark's tail is not in the window.
   * @default 50
   */
  timeToleranceMs: 50,
} as const;

/** A primary's subscription and its heartbeat (worker/expiry/node-subscriber.ts, subscription-heartbeat.ts). */
export const SUBSCRIBER_DEFAULTS = {
  /**
   * How often a subscription's byte count is checked, and how long an idle connection waits for its PING.
   * @default 500
   */
  heartbeatIntervalMs: 500,
  /**
   * How long a connection may read nothing while a PING is outstanding (then it is dropped); must
   * exceed `heartbeatIntervalMs`.
   * @default 1500
   */
  stallTimeoutMs: 1500,
  /**
   * A subscription decodes messages for at most this long per turn of the event loop, then pauses
   * its socket until the next turn: a backlog of thousands of events cannot hold back a due timer
   * (the lease renewal) or the replies on other sockets by more than a slice and one socket chunk.
   * @default 2
   */
  turnSliceMs: 2,
} as const;

/** The fan-in (worker/expiry/fan-in.ts). */
export const FAN_IN_DEFAULTS = {
  /**
   * Events handed on per turn of the event loop: timers (lease renewals) run between batches, so a
   * burst of thousands of keys cannot hold them back for longer than one batch takes.
   * @default 1024
   */
  batchSize: 1024,
  /**
   * A turn's hand-over ends after this long even short of `batchSize` (worker/expiry/fan-in.ts): a
   * touch due 1 ms after a burst began waited 18-29 ms behind a 1,024-event batch. A turn adds a poll
   * and one log write, small beside 2 ms of events.
   * @default 2
   */
  timeSliceMs: 2,
} as const;

/** Topology discovery (worker/expiry/topology-watcher.ts). */
export const TOPOLOGY_DEFAULTS = {
  /**
   * How often the topology is discovered.
   * @default 1000
   */
  intervalMs: 1000,
} as const;

/** The notify-check Lambda (lambdas/notify-check/*). */
export const NOTIFY_CHECK_DEFAULTS = {
  /**
   * NOTIFY_MODE.
   * @default 'auto'
   */
  notifyMode: 'auto',
  /**
   * CANARY_TIMEOUT_MS: bound on the wait for one canary's `expired` event.
   * @default 3000
   */
  canaryTimeoutMs: 3000,
} as const;

/**
 * Value capture (issue 14; worker/expiry/held-values.ts and the read-ahead): the leader reads a
 * tracked key's value just before its deadline and holds it until the key's `expired` event.
 */
export const VALUE_CAPTURE_DEFAULTS = {
  /**
   * CAPTURE_VALUES: read each tracked key's value before it expires and hand it to the handler.
   * Needs on-time expiry: with PRECISE_EXPIRY=false capture is off whatever this says.
   * @default true
   */
  captureValues: true,
  /**
   * EXPIRY_READ_AHEAD_MS: how long before a tracked key's deadline the leader reads its value (the
   * value is the key's value as it was at most this long before it expired).
   * @default 20
   */
  expiryReadAheadMs: 20,
  /**
   * VALUE_MAX_BYTES: a value over this many payload bytes is not read (`too-large`).
   * @default 65536
   */
  valueMaxBytes: 65_536,
  /**
   * VALUE_BUDGET_BYTES: bytes held values and reads in flight may take at most, as charged by
   * held-values.ts (payload plus a per-element and per-entry overhead). 64 MiB: an eighth of the
   * CDK stack's 512 MiB worker task, room for about 1,000 values at VALUE_MAX_BYTES or about 150,000
   * of 100 bytes (measured: a 100,000-key batch of 100-byte values is held whole, 44 MiB of heap; one
   * of 64 KiB values holds 1,018 of them and 98,982 uncharged `over-budget` reasons, 79 MiB, not 6 GB).
   * @default 67108864
   */
  valueBudgetBytes: 64 * 1024 * 1024,
  /**
   * A held value whose `expired` event has not come this long after its deadline (local clock) is
   * released, counted. Long on purpose: memory is bounded by the budget whatever this is; it only
   * decides how long a value whose event never comes (a DEL in the read-ahead window) keeps its
   * room, and it must outlast the wait of an event behind a backlog (the value is taken when its
   * handler call starts).
   * @default 60000
   */
  holdTimeoutMs: 60_000,
  /**
   * Shortest time between two sweeps of the held values for released ones (one timer, never one per key).
   * @default 1000
   */
  sweepIntervalMs: 1000,
  /**
   * `values.missing` lines per reason are written at most this often, with the count since the last one.
   * @default 10000
   */
  missingLogIntervalMs: 10_000,
  /**
   * Reads per ms a batch of keys sharing one deadline is planned at (value-capture.ts): the k-th key
   * of a 10 ms slice of deadlines is read k / readsPerMs ms earlier than EXPIRY_READ_AHEAD_MS. Planned
   * for a leader's first burst, not a warm one: a warm client reads ~25,000 hashes of 20 fields or
   * ~50,000 small strings a second here (value-reader.ts), but a new leader's first 1,000 reads run
   * cold on a loaded loop, and the bench's first bursts (2026-12-04, 1,000 keys sharing one deadline)
   * missed 48-108 values as `read-late` in 3 of 6 runs planned at 20 a ms, none in 6 at 5. The price:
   * a batch's first keys are read earlier (1,000 keys: over the 200 ms before the last read).
   * @default 5
   */
  readsPerMs: 5,
  /** A batch's read-ahead is at most this much longer than EXPIRY_READ_AHEAD_MS (100,000 keys at 5/ms). @default 20000 */
  maxLeadMs: 20_000,
  /** Width of the slices of deadlines whose keys are counted together for a batch's read-ahead. @default 10 */
  bucketMs: 10,
} as const;

/** Reading an expiring key's value (worker/expiry/value-reader.ts, worker/scripts/value-read.ts). */
export const VALUE_READ_DEFAULTS = {
  /**
   * VALUE_MAX_BYTES (VALUE_CAPTURE_DEFAULTS.valueMaxBytes): a value with more payload bytes (a string's length; the sum of every field and
   * value, item or member, 8 per score) is not read (`too-large`).
   * @default 65536
   */
  maxBytes: VALUE_CAPTURE_DEFAULTS.valueMaxBytes,
  /**
   * A hash, list, set or sorted set with more fields, items or members is not read (`too-large`):
   * empty items cost no payload bytes but each costs the primary a copy (about 0.2 us), so the bytes
   * alone do not bound a read's work. 8192 is `maxBytes` in elements of 8 bytes; reading that many
   * took the primary about 1.5 ms (Redis 7.0, one core).
   * @default 8192
   */
  maxElements: 8192,
} as const;
