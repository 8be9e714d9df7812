import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Cluster } from 'ioredis';
import { notifyCheckAccessString, workerAccessString } from '../../core/acl.ts';
import type { RedisConnectionConfig } from '../../core/config.ts';
import { decodeLogRecord, loggedErrorMessage } from '../../core/log-decoder.ts';
import { createLogger, type Logger, REDACTED } from '../../core/logger.ts';
import { closeQuietly, createClusterClient, createNodeClient } from '../../core/redis-client.ts';
import { discoverTopology } from '../../core/topology.ts';
import { LocalRedisCluster } from '../cluster.ts';
import { ClusterFileWriter } from './cluster-file.ts';
import { enableNotifications } from './enable-notifications.ts';
import { clockTime } from './format.ts';
import { KeyGenerator } from './key-generator.ts';
import { LiveScreen, renderLiveView } from './live-view.ts';
import type { RunnerOptions } from './parse-args.ts';
import { renderPlainBlock, renderSummaryLine } from './plain-view.ts';
import { ReferenceSubscribers } from './reference-subscribers.ts';
import { type Note, StatusModel, type StatusSnapshot } from './status-model.ts';
import { VolatileKeys } from './volatile-keys.ts';
import { preciseNow, WorkerSupervisor } from './worker-supervisor.ts';

/**
 * `npm start`: the whole system on the embedded cluster, watched from outside.
 *
 * Order of start: cluster -> notifications (the Lambda's logic) -> `.local/cluster.json` -> reference
 * subscribers -> workers -> (a leader, every worker subscribed) -> generator -> view.
 * Order of stop (q, Ctrl-C, a signal, the end of --for, or a crash of this process): generator ->
 * drain (the last keys expire and are counted) -> summary -> workers (SIGTERM, SIGKILL after a bound)
 * -> reference subscribers -> cluster -> `.local/cluster.json`. Nothing is left behind: see
 * docs/local-run.md ("Cleanup guarantees") for the cases, SIGKILL of this process included.
 */

export interface RunnerIO {
  readonly stdout: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
  /** The repository root (`.local/cluster.json` goes there; the workers run there). */
  readonly cwd: string;
  /**
   * Tests only (KL_TEST_SECRETS_FILE): with `--tls`, the generated ACL passwords are written there
   * (mode 0600) so a test can prove they never reach the output. Unset: they exist only in memory
   * and in the environment of the children that need them.
   */
  readonly testSecretsFile?: string | undefined;
}

/** ACL user names of a `--tls` run. */
export const TLS_WORKER_USER = 'worker';
export const TLS_CHECK_USER = 'check';

/** The ACL users of a `--tls` run, with passwords generated for this run (never printed). */
export interface RunUsers {
  readonly worker: { readonly name: string; readonly password: string; readonly access: string };
  readonly check: { readonly name: string; readonly password: string; readonly access: string };
}

export function generateRunUsers(leaderName: string): RunUsers {
  // Hex: no character that the ACL `>password` rule or a shell would treat specially.
  const password = () => randomBytes(24).toString('hex');
  return {
    worker: { name: TLS_WORKER_USER, password: password(), access: workerAccessString(leaderName) },
    check: {
      name: TLS_CHECK_USER,
      password: password(),
      access: notifyCheckAccessString(leaderName, { configRights: true }),
    },
  };
}

/** What the views show about TLS and authentication; undefined without --tls. */
export function securityLabel(users: RunUsers | undefined): string | undefined {
  return users ? `TLS, ACL users ${users.worker.name}/${users.check.name}` : undefined;
}

/** Replaces every secret in `text` with [redacted] (a last line of defence before anything is printed). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret && out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

export const DEMO_KEY_PREFIX = 'demo:';
/** The `--volatile` background keys: names and TTL (docs/local-run.md, `--volatile`). */
export const VOLATILE_KEY_PREFIX = 'volatile:';
export const VOLATILE_KEY_TTL_MS = 3_600_000;
export const WORKER_SCRIPT = fileURLToPath(new URL('../../worker/main.ts', import.meta.url));

/** Rates `+` and `-` step through. */
export const RATE_STEPS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000];

export function nextRate(current: number, direction: 1 | -1): number {
  if (direction === 1) return RATE_STEPS.find((r) => r > current) ?? current;
  return [...RATE_STEPS].reverse().find((r) => r < current) ?? current;
}

const WORKER_STOP_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 45_000;
/** After the generator stops: the last keys' TTL plus the observed expiry delay (p99 ~300 ms here). */
const DRAIN_EXTRA_MS = 1500;
const CRASH_TEARDOWN_BOUND_MS = 20_000;

type StopReason = 'quit' | 'for-elapsed' | 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'crash';

const SIGNAL_NUMBERS: Partial<Record<StopReason, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

class StopRequested extends Error {}

export class LocalRunner {
  private readonly model: StatusModel;
  private readonly live: boolean;
  private readonly startedAtMs = Date.now();
  private readonly fileWriter: ClusterFileWriter;
  private readonly logger: Logger;
  /** ACL users with this run's passwords (`--tls` only). */
  private readonly users: RunUsers | undefined;
  /** Values never printed: the users' passwords and the cluster's admin password (`--tls`). */
  private readonly secrets: string[] = [];
  private cluster: LocalRedisCluster | undefined;
  private client: Cluster | undefined;
  private reference: ReferenceSubscribers | undefined;
  private supervisor: WorkerSupervisor | undefined;
  private generator: KeyGenerator | undefined;
  private volatile: VolatileKeys | undefined;
  private volatileDeletion: Promise<void> | undefined;
  private volatileLoaded = 0;
  private screen: LiveScreen | undefined;
  private viewTimer: NodeJS.Timeout | undefined;
  private forTimer: NodeJS.Timeout | undefined;
  private stopReason: StopReason | undefined;
  private resolveStop: () => void = () => {};
  private readonly stopped: Promise<void>;
  private failoverRunning = false;
  private failoverIndex = 0;
  private tearingDown: Promise<void> | undefined;
  private readonly hooks: { event: string; listener: (...args: never[]) => void }[] = [];

  constructor(
    private readonly options: RunnerOptions,
    private readonly io: RunnerIO,
  ) {
    this.live = !options.plain;
    this.users = options.tls ? generateRunUsers(options.leaderName) : undefined;
    if (this.users) this.secrets.push(this.users.worker.password, this.users.check.password);
    this.fileWriter = new ClusterFileWriter(io.cwd);
    this.stopped = new Promise((resolve) => {
      this.resolveStop = resolve;
    });
    this.model = new StatusModel({
      startedAtMs: this.startedAtMs,
      settings: {
        keysPerSecond: options.keysPerSecond,
        keyTtlMs: options.keyTtlMs,
        primaries: options.primaries,
        replicasPerPrimary: options.replicasPerPrimary,
        leaderName: options.leaderName,
        security: securityLabel(this.users),
        volatileKeys: options.volatileKeys,
      },
      isTrackedKey: (key) => key.startsWith(DEMO_KEY_PREFIX),
      notesKept: 10,
      onNote: (note) => this.onNote(note),
    });
    // The runner's own clients log connection problems here; they become notes.
    this.logger = createLogger({
      level: 'warn',
      base: { workerId: 'runner' },
      secrets: this.secrets,
      write: (line) => {
        const record = decodeLogRecord(line);
        const node = record && 'node' in record ? record.node : undefined;
        const error = record && 'error' in record ? loggedErrorMessage(record.error) : undefined;
        this.model.note(
          `runner ${record?.event ?? '?'}${node ? ` ${node}` : ''}: ${error ?? ''}`,
          Date.now(),
          'warn',
        );
      },
    });
  }

  private onNote(note: Note): void {
    if (!this.live || !this.screen)
      this.print(`${clockTime(note.atMs)} ${note.level === 'warn' ? 'WARN ' : ''}${note.text}`);
  }

  private print(line: string): void {
    this.io.stdout.write(`${scrubSecrets(line, this.secrets)}\n`);
  }

  /** Runs until stopped; resolves with the process exit code after everything is cleaned up. */
  async run(): Promise<number> {
    this.installProcessHooks();
    let exitCode = 0;
    let summary: StatusSnapshot | undefined;
    try {
      await this.setUp();
      await this.stopped;
      summary = await this.drain();
    } catch (error) {
      if (!(error instanceof StopRequested)) {
        exitCode = 1;
        this.model.note(`failed: ${describe(error)}`, Date.now(), 'warn');
        if (this.screen) {
          this.screen.close();
          this.print(`failed: ${describe(error)}`);
        }
      }
    } finally {
      await this.tearDown();
      this.uninstallProcessHooks();
    }
    if (summary) {
      for (const line of renderPlainBlock(summary)) this.print(line);
      this.print(renderSummaryLine(summary));
    }
    const signalNumber = this.stopReason ? SIGNAL_NUMBERS[this.stopReason] : undefined;
    if (exitCode === 0 && signalNumber !== undefined) exitCode = 128 + signalNumber;
    return exitCode;
  }

  requestStop(reason: StopReason): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.model.note(`stopping (${reason})`, Date.now());
    this.resolveStop();
  }

  private checkStop(): void {
    if (this.stopReason !== undefined) throw new StopRequested();
  }

  private async setUp(): Promise<void> {
    const o = this.options;
    this.model.note(
      `starting an embedded Redis Cluster: ${o.primaries} primaries, ${o.replicasPerPrimary} replica(s) each`,
      Date.now(),
    );
    const users = this.users;
    const cluster = await LocalRedisCluster.start({
      primaries: o.primaries,
      replicasPerPrimary: o.replicasPerPrimary,
      persistence: 'off',
      ...(users
        ? { tls: true, disableDefaultUser: true, users: [{ ...users.worker }, { ...users.check }] }
        : {}),
    });
    this.cluster = cluster;
    // The runner's own clients (reference subscribers, generator) use the cluster's internal admin
    // user: the generator's `demo:` keys are outside what the worker and check users may touch.
    const admin = cluster.clientOptions();
    if (admin.password) this.secrets.push(admin.password);
    if (users && this.io.testSecretsFile) {
      writeFileSync(
        this.io.testSecretsFile,
        JSON.stringify({ passwords: [users.worker.password, users.check.password] }),
        { mode: 0o600 },
      );
    }
    const nodes = cluster.nodes;
    this.model.note(
      `cluster up in ${Math.round(cluster.startupMs)} ms: folder ${cluster.folder}; redis-server pids ` +
        `${nodes.map((n) => `${n.port}:pid ${n.pid}`).join(', ')}; crash guard pid ${cluster.crashGuardPid ?? '?'}`,
      Date.now(),
    );
    if (users) {
      this.model.note(
        `TLS only (CA ${cluster.caFile}), default user off; ACL users ${users.worker.name} (workers) and ` +
          `${users.check.name} (notify-check, with CONFIG rights), passwords generated for this run`,
        Date.now(),
      );
    }
    this.checkStop();

    const setup = await enableNotifications({
      seeds: cluster.seeds,
      leaderName: o.leaderName,
      ...(users && cluster.caFile
        ? {
            connection: {
              tlsCaFile: cluster.caFile,
              username: users.check.name,
              password: users.check.password,
            },
          }
        : {}),
      logger: this.logger,
      fallback: (name, value) => cluster.configSetAll(name, value),
    });
    for (const line of setup.lines) this.model.note(line, Date.now(), setup.ok ? 'info' : 'warn');
    this.checkStop();

    this.fileWriter.write({
      nodes: cluster.seeds,
      tls: cluster.tls,
      caFile: cluster.caFile,
      pid: process.pid,
    });
    this.model.note(`wrote ${this.fileWriter.filePath} (npm run worker / npm run report use it)`, Date.now());

    const redis: RedisConnectionConfig = {
      nodes: cluster.seeds,
      tls: cluster.tls,
      tlsCaFile: cluster.caFile,
      username: admin.username,
      password: admin.password,
    };
    const client = createClusterClient(redis, { logger: this.logger, name: 'runner' });
    this.client = client;
    this.reference = new ReferenceSubscribers({
      discover: () =>
        discoverTopology((command, ...args) => client.call(command, ...args), { preferTls: redis.tls }),
      connect: (address) => createNodeClient(address, redis, { logger: this.logger, name: 'reference' }),
      onEvent: (key, node, atMs) => this.model.referenceEvent(key, node, atMs),
      onPrimariesChanged: (primaries) => {
        this.model.knownPrimaries(primaries);
        this.model.note(
          `primaries: ${primaries.join(', ')} (bare reference subscribers on every node)`,
          Date.now(),
        );
      },
      onNotice: (text) => this.model.note(text, Date.now(), 'warn'),
      now: preciseNow,
    });
    await this.reference.start();
    this.checkStop();

    if (o.volatileKeys > 0) await this.loadVolatileKeys(redis, client);
    this.checkStop();

    this.supervisor = new WorkerSupervisor({
      script: WORKER_SCRIPT,
      cwd: this.io.cwd,
      env: {
        REDIS_NODES: cluster.seeds.map((s) => `${s.host}:${s.port}`).join(','),
        LEADER_NAME: o.leaderName,
        HEALTH_PORT: '0',
        HANDLER: o.handler,
        LOG_LEVEL: 'info',
        // The runner counts `key.processed` lines: one per completed call, whatever the caller's env says.
        PROCESSED_LOG: 'all',
        KL_RUNNER_CLUSTER_FILE: this.fileWriter.filePath,
        ...(users
          ? {
              REDIS_TLS: 'true',
              REDIS_TLS_CA_FILE: cluster.caFile,
              REDIS_USERNAME: users.worker.name,
              REDIS_PASSWORD: users.worker.password,
            }
          : {}),
      },
      stopTimeoutMs: WORKER_STOP_TIMEOUT_MS,
      now: preciseNow,
      events: {
        onSpawn: (id, pid, atMs) => this.model.workerSpawned(id, pid, atMs),
        onLine: (id, line, atMs) => this.model.workerLine(id, line, atMs),
        onStderr: (id, line, atMs) => this.model.workerStderr(id, line, atMs),
        onExit: (id, code, signal, atMs) => this.model.workerExited(id, code, signal, atMs),
        onNotice: (text, atMs) => this.model.note(text, atMs, 'warn'),
      },
    });
    this.supervisor.start(o.workers);
    if (this.live) this.openScreen();
    this.startViewTimer();
    await this.waitUntilReady();
    this.checkStop();

    this.generator = new KeyGenerator({
      client,
      prefix: DEMO_KEY_PREFIX,
      ttlMs: o.keyTtlMs,
      keysPerSecond: o.keysPerSecond,
      // PXAT on the runner's wall clock: each key's deadline is known here (native expiry lag).
      wallNow: preciseNow,
      onSet: (key, deadlineMs) => {
        this.model.keySet(this.reference?.ownerOf(key));
        if (deadlineMs !== undefined) this.model.keyDeadline(key, deadlineMs);
      },
      onError: (error) => this.model.note(`generator: SET failed: ${error.message}`, Date.now(), 'warn'),
    });
    this.generator.start();
    this.model.note(
      `generator started: ${o.keysPerSecond} keys/s named ${DEMO_KEY_PREFIX}<n>, TTL ${o.keyTtlMs} ms` +
        (o.forSeconds !== undefined ? `; stopping after ${o.forSeconds} s` : ''),
      Date.now(),
    );
    if (o.forSeconds !== undefined) {
      this.forTimer = setTimeout(() => this.requestStop('for-elapsed'), o.forSeconds * 1000);
    }
  }

  /** `--volatile N`: the background keys, set before the workers start (they find them with their scan). */
  private async loadVolatileKeys(redis: RedisConnectionConfig, client: Cluster): Promise<void> {
    const count = this.options.volatileKeys;
    const volatile = new VolatileKeys({
      count,
      prefix: VOLATILE_KEY_PREFIX,
      ttlMs: VOLATILE_KEY_TTL_MS,
      discover: () =>
        discoverTopology((command, ...args) => client.call(command, ...args), { preferTls: redis.tls }),
      connect: (node) => {
        const connection = createNodeClient(node, redis, { logger: this.logger, name: 'volatile' });
        return {
          exec: async (commands) => {
            const pipeline = connection.pipeline();
            for (const [name, ...args] of commands) pipeline.call(String(name), ...args);
            const results = (await pipeline.exec()) ?? [];
            return commands.map((_, i) => {
              const [error, reply] = results[i] ?? [new Error('no reply'), undefined];
              return error ?? reply;
            });
          },
          close: () => connection.disconnect(),
        };
      },
    });
    this.volatile = volatile;
    const startedMs = performance.now();
    const { set, failed, firstError } = await volatile.load();
    this.volatileLoaded = set;
    this.model.volatileKeys({ loaded: set, left: undefined });
    this.model.note(
      `loaded ${set} volatile keys ${VOLATILE_KEY_PREFIX}1..${count} (TTL 1 h) in ${Math.round(performance.now() - startedMs)} ms` +
        (failed > 0 ? `; ${failed} failed (${firstError})` : ''),
      Date.now(),
      failed > 0 ? 'warn' : 'info',
    );
  }

  /** Deletes the `--volatile` keys (once: at the end of a run, or in the teardown of a failed one). */
  private deleteVolatileKeys(): Promise<void> {
    const volatile = this.volatile;
    if (!volatile) return Promise.resolve();
    this.volatileDeletion ??= volatile.deleteAll().then(
      ({ deleted, left }) => {
        this.model.volatileKeys({ loaded: this.volatileLoaded, left });
        this.model.note(
          `deleted ${deleted} volatile keys; ${left} left`,
          Date.now(),
          left > 0 ? 'warn' : 'info',
        );
      },
      // Not a failure of the run: said, and the cluster (with the keys) is removed next anyway.
      (error: unknown) =>
        this.model.note(`deleting the volatile keys failed: ${describe(error)}`, Date.now(), 'warn'),
    );
    return this.volatileDeletion;
  }

  /** Waits for one leader and every worker subscribed to every primary (bounded; then goes on). */
  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      this.checkStop();
      if (this.supervisor?.gaveUp)
        throw new Error('the workers keep exiting at start (see their stderr and log lines above)');
      const snapshot = this.model.snapshot(Date.now());
      const primaries = this.reference?.subscribedPrimaryCount() ?? this.options.primaries;
      const running = snapshot.workers.filter((w) => w.state !== 'exited');
      const allSubscribed = running.every((w) => (w.subscribedPrimaries ?? 0) >= primaries);
      if (snapshot.leaders.length === 1 && running.length >= this.options.workers && allSubscribed) {
        this.model.note(
          `ready: ${snapshot.leaders[0]?.id} leads, every worker subscribed to ${primaries} primaries`,
          Date.now(),
        );
        return;
      }
      await sleep(200);
    }
    this.model.note(
      `not ready within ${READY_TIMEOUT_MS / 1000} s (no leader, or not every worker subscribed); going on`,
      Date.now(),
      'warn',
    );
  }

  private openScreen(): void {
    this.screen = new LiveScreen({ output: this.io.stdout, input: this.io.stdin }, (key) => this.onKey(key));
    this.screen.start();
  }

  private startViewTimer(): void {
    const intervalMs = this.live ? 1000 : this.options.plainIntervalSeconds * 1000;
    this.viewTimer = setInterval(() => this.render(), intervalMs);
    this.render();
  }

  private render(): void {
    if (this.generator)
      this.model.generatorTotals(this.generator.counts().sent, this.generator.counts().failed);
    const snapshot = this.model.snapshot(Date.now());
    if (this.screen) {
      this.screen.draw(
        renderLiveView(snapshot, {
          columns: this.io.stdout.columns ?? 120,
          color: !process.env.NO_COLOR,
        }).map((line) => scrubSecrets(line, this.secrets)),
      );
    } else if (!this.live) {
      for (const line of renderPlainBlock(snapshot)) this.print(line);
    }
  }

  onKey(key: string): void {
    switch (key) {
      case 'q':
      case 'Q':
      case '\u0003': // Ctrl-C in raw mode
        this.requestStop('quit');
        return;
      case 'k':
        this.signalLeader('SIGKILL');
        return;
      case 't':
        this.signalLeader('SIGTERM');
        return;
      case 'f':
        this.failOver();
        return;
      case '+':
      case '=':
        this.changeRate(1);
        return;
      case '-':
      case '_':
        this.changeRate(-1);
        return;
      default:
    }
  }

  private signalLeader(signal: 'SIGKILL' | 'SIGTERM'): void {
    const leaders = this.model.snapshot(Date.now()).leaders;
    const leader = leaders[0];
    if (!leader || !this.supervisor) {
      this.model.note(`no leader to send ${signal} to`, Date.now(), 'warn');
      return;
    }
    this.model.workerSignalled(leader.id, signal, preciseNow());
    this.supervisor.signal(leader.id, signal);
  }

  private failOver(): void {
    const cluster = this.cluster;
    if (!cluster || this.failoverRunning) return;
    if (this.options.replicasPerPrimary === 0) {
      this.model.note('no replicas (--replicas 0): nothing to fail over to', Date.now(), 'warn');
      return;
    }
    this.failoverRunning = true;
    const run = async () => {
      const primaries = await cluster.primaries();
      const target = primaries[this.failoverIndex++ % primaries.length];
      if (!target) return;
      this.model.note(`failing over primary :${target.port} (CLUSTER FAILOVER on its replica)`, Date.now());
      const promoted = await cluster.failover(target.port);
      this.model.note(`failover done: :${promoted} now serves the slots of :${target.port}`, Date.now());
    };
    run()
      .catch((error: unknown) => this.model.note(`failover failed: ${describe(error)}`, Date.now(), 'warn'))
      .finally(() => {
        this.failoverRunning = false;
      });
  }

  private changeRate(direction: 1 | -1): void {
    if (!this.generator) return;
    const rate = nextRate(this.generator.keysPerSecond, direction);
    this.generator.setRate(rate);
    this.model.updateSettings({ keysPerSecond: rate });
    this.model.note(`key rate ${rate}/s`, Date.now());
  }

  /** Stops the generator, lets the last keys expire and be processed, and snapshots the totals. */
  private async drain(): Promise<StatusSnapshot> {
    if (this.forTimer) clearTimeout(this.forTimer);
    if (this.generator) {
      await this.generator.stop();
      this.model.generatorTotals(this.generator.counts().sent, this.generator.counts().failed);
      const drainMs = this.options.keyTtlMs + DRAIN_EXTRA_MS;
      this.model.note(`generator stopped; waiting ${drainMs} ms for the last keys to expire`, Date.now());
      await sleep(drainMs);
    }
    await this.deleteVolatileKeys();
    // Settle everything still pending: a key nobody processed by now counts as missing.
    this.model.settleAll();
    return this.model.snapshot(Date.now());
  }

  /** Stops everything in order. Idempotent (a crash during a normal stop joins the same teardown). */
  private tearDown(): Promise<void> {
    this.tearingDown ??= this.doTearDown();
    return this.tearingDown;
  }

  private async doTearDown(): Promise<void> {
    if (this.forTimer) clearTimeout(this.forTimer);
    const steps: [string, () => Promise<void> | void][] = [
      ['generator', () => this.generator?.stop()],
      ['volatile keys', () => this.deleteVolatileKeys()],
      ['workers', () => this.supervisor?.stop()],
      ['reference subscribers', () => this.reference?.stop()],
      ['runner client', () => (this.client ? closeQuietly(this.client) : undefined)],
      ['cluster', () => this.cluster?.stop()],
      ['.local/cluster.json', () => this.fileWriter.removeSync()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.model.note(`stopping ${what} failed: ${describe(error)}`, Date.now(), 'warn');
      }
    }
    if (this.viewTimer) clearInterval(this.viewTimer);
    this.viewTimer = undefined;
    this.screen?.close();
    this.screen = undefined;
    this.print(
      `stopped: workers stopped, cluster stopped${this.cluster ? ` (${this.cluster.folder} removed)` : ''}, ` +
        `${this.fileWriter.filePath} removed`,
    );
  }

  private on(event: string, listener: (...args: never[]) => void): void {
    process.on(event as 'SIGINT', listener as () => void);
    this.hooks.push({ event, listener });
  }

  private installProcessHooks(): void {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      let count = 0;
      this.on(signal, () => {
        count++;
        if (count === 1) this.requestStop(signal);
        else this.emergencyExit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
      });
    }
    const crash = (error: unknown) => {
      this.screen?.close();
      this.print(`runner crashed: ${describe(error)}`);
      // Bounded: whatever the teardown does, this process ends and the exit hook kills the rest.
      setTimeout(() => this.emergencyExit(1), CRASH_TEARDOWN_BOUND_MS).unref();
      this.stopReason ??= 'crash';
      this.tearDown().then(
        () => process.exit(1),
        () => process.exit(1),
      );
    };
    this.on('uncaughtException', crash);
    this.on('unhandledRejection', crash);
    // Synchronous last resort on any exit: no worker, no file, a usable terminal.
    this.on('exit', () => {
      this.supervisor?.killAllSync();
      this.fileWriter.removeSync();
      this.screen?.close();
    });
  }

  private uninstallProcessHooks(): void {
    for (const { event, listener } of this.hooks) process.off(event as 'SIGINT', listener as () => void);
    this.hooks.length = 0;
  }

  /** A second Ctrl-C, or a teardown that hangs: SIGKILL the workers and exit (the cluster's own hook kills Redis). */
  private emergencyExit(code: number): void {
    this.supervisor?.killAllSync();
    this.fileWriter.removeSync();
    this.screen?.close();
    process.exit(code);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
