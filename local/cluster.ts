import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import { type NodeConnectionSettings, replyText, withAdminConnection } from './admin-connection.ts';
import {
  assessClusterHealth,
  type ClusterHealth,
  type ClusterNodeEntry,
  type LocalNodeRole,
  type NodeObservation,
  parseClusterNodes,
  parseInfo,
} from './cluster-health.ts';
import {
  ADMIN_USERNAME,
  type LocalClusterOptions,
  parseClusterOptions,
  type ResolvedClusterOptions,
} from './cluster-options.ts';
import { CrashCleanup } from './crash-cleanup.ts';
import {
  LocalClusterOptionsError,
  LocalClusterStateError,
  LocalClusterStoppedError,
  RedisNodeStartError,
} from './errors.ts';
import { findFreePorts } from './free-port.ts';
import { pollUntil } from './poll.ts';
import { resolveRedisServer } from './redis-binary.ts';
import { buildNodeConfig, type TlsFiles } from './redis-config.ts';
import { RedisNodeProcess } from './redis-node-process.ts';
import { rangesOf, type SlotRange, slotsOf, splitAllSlots, splitSlotRange } from './slot-ranges.ts';
import { generateTlsCertificates } from './tls-certs.ts';

export type { LocalClusterOptions } from './cluster-options.ts';
export type { SlotRange } from './slot-ranges.ts';

const HOST = '127.0.0.1';

export type LocalNodeState = 'running' | 'paused' | 'stopped';

/** A node as last known by the class (roles are refreshed by every health check). */
export interface LocalRedisNode {
  readonly host: string;
  readonly port: number;
  readonly busPort: number;
  /** Undefined while the node is stopped. */
  readonly pid: number | undefined;
  readonly id: string;
  readonly role: LocalNodeRole;
  /** For replicas: the id of their primary. */
  readonly primaryId: string | undefined;
  readonly state: LocalNodeState;
}

export interface LocalPrimary {
  readonly host: string;
  readonly port: number;
  readonly id: string;
  readonly slots: SlotRange[];
}

/** What an ioredis client (Redis or Cluster `redisOptions`) needs to reach the local cluster. */
export interface LocalClientOptions {
  tls?: ConnectionOptions;
  username?: string;
  password?: string;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
}

interface NodeRecord {
  // Port, bus port and folder change only if a brand-new node has to retry on other ports.
  port: number;
  busPort: number;
  dir: string;
  id: string;
  role: LocalNodeRole;
  primaryId: string | undefined;
  state: LocalNodeState;
  process: RedisNodeProcess | undefined;
}

const DEFAULT_WAIT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const MIGRATE_BATCH_KEYS = 100;
const MIGRATE_TIMEOUT_MS = 10_000;
const SLOT_BATCH = 64;

/**
 * An embedded Redis Cluster for tests and `npm start`: N primaries with R replicas each, spawned from
 * the `redis-server` binary on free 127.0.0.1 ports in a temporary folder, joined by hand through
 * ioredis (ADDSLOTSRANGE, MEET, REPLICATE; no redis-cli needed), with chaos controls. See
 * docs/local-cluster.md.
 *
 * Contracts:
 * - `start()` resolves only when every node reports `cluster_state:ok`, every replica has
 *   `master_link_status:up`, and every node describes the same slot map covering all 16384 slots.
 * - `stop()` (idempotent) leaves no process and no file; so does a crash of the owning process
 *   (crash-cleanup.ts).
 * - Chaos operations run one at a time (the class does not serialise them).
 */
export class LocalRedisCluster {
  private readonly records = new Map<number, NodeRecord>();
  private readonly adminPassword = randomBytes(24).toString('hex');
  private readonly configOverrides = new Map<string, string>();
  private crashCleanup: CrashCleanup | undefined;
  private tlsFiles: TlsFiles | undefined;
  private caPem: string | undefined;
  private stopPromise: Promise<void> | undefined;
  private startupMsValue = 0;

  private constructor(
    private readonly options: ResolvedClusterOptions,
    /** The temporary folder holding every node's config, data and logs (and the TLS files). */
    readonly folder: string,
    private readonly redisServerPath: string,
  ) {}

  static async start(options?: LocalClusterOptions): Promise<LocalRedisCluster> {
    const parsed = parseClusterOptions(options);
    const startedAt = performance.now();
    const redisServerPath = parsed.redisServerPath ?? (await resolveRedisServer());
    const folder = await mkdtemp(join(tmpdir(), 'kl-redis-cluster-'));
    const cluster = new LocalRedisCluster(parsed, folder, redisServerPath);
    try {
      await cluster.boot(startedAt);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Wall-clock time `start()` took, in ms. */
  get startupMs(): number {
    return this.startupMsValue;
  }

  /** Every node (any role, any state), as `{ host, port }`, for a Cluster client's startup nodes. */
  get seeds(): { host: string; port: number }[] {
    return [...this.records.values()].map((r) => ({ host: HOST, port: r.port }));
  }

  get nodes(): LocalRedisNode[] {
    return [...this.records.values()].map((r) => ({
      host: HOST,
      port: r.port,
      busPort: r.busPort,
      pid: r.state === 'stopped' ? undefined : r.process?.pid,
      id: r.id,
      role: r.role,
      primaryId: r.primaryId,
      state: r.state,
    }));
  }

  /** Pid of the detached crash guard (crash-cleanup.ts), for tests that check it ends too. */
  get crashGuardPid(): number | undefined {
    return this.crashCleanup?.guardPid;
  }

  get tls(): boolean {
    return this.options.tls;
  }

  /** PEM file of the CA that signed the nodes' certificate (tls only). */
  get caFile(): string | undefined {
    return this.tlsFiles?.caFile;
  }

  /** Certificate and key every node serves (tls only); also usable as a client certificate. */
  get certFile(): string | undefined {
    return this.tlsFiles?.certFile;
  }

  get keyFile(): string | undefined {
    return this.tlsFiles?.keyFile;
  }

  /**
   * Options for an ioredis client: `tls.ca` when tls is on, and credentials. With `user`, that
   * user's (from `options.users`); without, none when the default user is on, else the internal
   * admin user's (full access), so tests can always build an unrestricted client.
   */
  clientOptions(options: { user?: string } = {}): LocalClientOptions {
    const tls = this.caPem !== undefined ? { tls: { ca: this.caPem } } : {};
    if (options.user !== undefined) {
      const user = this.options.users.find((u) => u.name === options.user);
      if (!user) throw new LocalClusterOptionsError([`clientOptions: unknown user '${options.user}'`]);
      return { ...tls, username: user.name, password: user.password };
    }
    if (!this.options.disableDefaultUser) return { ...tls };
    return { ...tls, username: ADMIN_USERNAME, password: this.adminPassword };
  }

  /** A plain ioredis client to one node (connects at once; the caller disconnects it). */
  nodeClient(port: number, options: { user?: string } = {}): Redis {
    this.record(port);
    const client = new Redis({ host: HOST, port, ...this.clientOptions(options) });
    // Keeps an unhandled 'error' event from crashing the process; commands still reject.
    client.on('error', () => {});
    return client;
  }

  /**
   * Fresh list of the primaries (CLUSTER NODES of the first running node that answers): every node
   * flagged master and not `fail`, with its slots; sorted by first slot, slot-less ones last.
   */
  async primaries(): Promise<LocalPrimary[]> {
    this.assertRunning('primaries');
    const entries = await this.readClusterNodes();
    return entries
      .filter((e) => e.role === 'primary' && !e.isFailed && !e.isIncomplete)
      .map((e) => ({
        host: e.host === '' ? HOST : e.host,
        port: e.port,
        id: e.id,
        slots: e.slots.map(([a, b]): SlotRange => [a, b]),
      }))
      .sort(
        (a, b) => (a.slots[0]?.[0] ?? Number.MAX_SAFE_INTEGER) - (b.slots[0]?.[0] ?? Number.MAX_SAFE_INTEGER),
      );
  }

  /**
   * CONFIG SET on every running node. The value is also kept for nodes started or restarted later
   * (like a parameter group); a paused node is skipped.
   */
  async configSetAll(name: string, value: string): Promise<void> {
    this.assertRunning('configSetAll');
    this.configOverrides.set(name, value);
    await Promise.all(
      this.runningRecords().map((r) => this.withAdmin(r.port, (c) => c.call('CONFIG', 'SET', name, value))),
    );
  }

  /** Graceful stop: SIGTERM, which the nodes turn into SHUTDOWN NOW (no wait for replicas). */
  async stopNode(port: number): Promise<void> {
    this.assertRunning('stopNode');
    await this.terminate(this.record(port), 'SIGTERM');
  }

  /** SIGKILL: the crash of a node (or of its host). */
  async killNode(port: number): Promise<void> {
    this.assertRunning('killNode');
    await this.terminate(this.record(port), 'SIGKILL');
  }

  /** SIGSTOP: the node keeps its sockets but answers nothing (a GC pause, a frozen VM). */
  pauseNode(port: number): void {
    this.assertRunning('pauseNode');
    const record = this.record(port);
    if (record.state !== 'running')
      throw new LocalClusterStateError(`pauseNode(${port}): node is ${record.state}`);
    record.process?.signal('SIGSTOP');
    record.state = 'paused';
  }

  /** SIGCONT after pauseNode. */
  resumeNode(port: number): void {
    this.assertRunning('resumeNode');
    const record = this.record(port);
    if (record.state !== 'paused')
      throw new LocalClusterStateError(`resumeNode(${port}): node is ${record.state}`);
    record.process?.signal('SIGCONT');
    record.state = 'running';
  }

  /**
   * Stops the node if it runs, starts it again on the same port with the same nodes.conf and data
   * folder, and waits until the cluster is ok with it as a member again. What it keeps depends on
   * `persistence`; without persistence a restarted primary comes back empty (and its replica resyncs
   * to empty too, if no failover happened meanwhile).
   */
  async restartNode(port: number, wait: WaitOptions = {}): Promise<void> {
    this.assertRunning('restartNode');
    const record = this.record(port);
    if (record.state !== 'stopped') await this.terminate(record, 'SIGTERM');
    await this.spawnNode(record, wait.timeoutMs ?? DEFAULT_WAIT_MS);
    await this.waitForClusterOk(wait);
  }

  /**
   * CLUSTER FAILOVER on a replica of the primary at `primaryPort` (FORCE when the primary cannot
   * take part, e.g. paused). Resolves with the replica's port once it is the primary and the cluster
   * is ok again.
   */
  async failover(primaryPort: number, options: WaitOptions & { force?: boolean } = {}): Promise<number> {
    this.assertRunning('failover');
    const primary = this.record(primaryPort);
    const entries = await this.readClusterNodes();
    const entry = entries.find((e) => e.id === primary.id);
    if (entry?.role !== 'primary') {
      throw new LocalClusterStateError(`failover(${primaryPort}): not a primary`);
    }
    const replica = entries
      .filter((e) => e.primaryId === primary.id && !e.isFailed)
      .map((e) => this.records.get(e.port))
      .find((r) => r !== undefined && r.state === 'running');
    if (!replica)
      throw new LocalClusterStateError(`failover(${primaryPort}): the primary has no running replica`);
    await this.withAdmin(replica.port, (c) =>
      c.call('CLUSTER', 'FAILOVER', ...(options.force ? ['FORCE'] : [])),
    );
    await this.waitForHealth(
      `failover of :${primaryPort} to :${replica.port}`,
      options.timeoutMs,
      (health) =>
        health.agreed.some((e) => e.id === replica.id && e.role === 'primary') ? replica.port : undefined,
    );
    return replica.port;
  }

  /**
   * After `killNode`/`pauseNode` of a primary: resolves with the port of the replica that took its
   * place, once the cluster is ok again (every slot served by a running primary).
   */
  async waitForPromotion(deadPrimaryPort: number, wait: WaitOptions = {}): Promise<number> {
    this.assertRunning('waitForPromotion');
    const dead = this.record(deadPrimaryPort);
    const candidates = [...this.records.values()].filter((r) => r.primaryId === dead.id);
    if (candidates.length === 0) {
      throw new LocalClusterStateError(`waitForPromotion(${deadPrimaryPort}): it had no replica to promote`);
    }
    return this.waitForHealth(`promotion of a replica of :${deadPrimaryPort}`, wait.timeoutMs, (health) => {
      const promoted = candidates.find((r) =>
        health.agreed.some((e) => e.id === r.id && e.role === 'primary'),
      );
      return promoted?.port;
    });
  }

  /** Starts a new empty primary, introduces it (CLUSTER MEET) and waits until all nodes know it. */
  async addPrimary(wait: WaitOptions = {}): Promise<number> {
    this.assertRunning('addPrimary');
    const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
    const [record] = await this.startNewNodes(1, timeoutMs);
    if (!record) throw new LocalClusterStateError('addPrimary: no node started');
    const anchor = this.runningRecords().find((r) => r !== record);
    if (anchor) {
      await this.withAdmin(anchor.port, (c) => c.call('CLUSTER', 'MEET', HOST, record.port, record.busPort));
    }
    await this.waitForClusterOk({ timeoutMs });
    return record.port;
  }

  /**
   * Moves `count` slots (the highest the source owns) with their keys, the way redis-cli reshards:
   * SETSLOT IMPORTING on the target, MIGRATING on the source, MIGRATE of the keys in batches, then
   * SETSLOT NODE on the target, the source and every other primary. Returns the moved ranges once
   * every node agrees.
   */
  async moveSlots(
    fromPort: number,
    toPort: number,
    count: number,
    wait: WaitOptions = {},
  ): Promise<SlotRange[]> {
    this.assertRunning('moveSlots');
    const health = await this.waitForClusterOk(wait);
    const source = this.primaryEntry(health, fromPort, 'moveSlots');
    const target = this.primaryEntry(health, toPort, 'moveSlots');
    if (source.id === target.id)
      throw new LocalClusterStateError('moveSlots: source and target are the same node');
    const owned = slotsOf(source.slots);
    if (!Number.isInteger(count) || count < 1 || count > owned.length) {
      throw new LocalClusterStateError(
        `moveSlots: count ${count} not in 1..${owned.length} (slots of :${fromPort})`,
      );
    }
    const slots = owned.slice(owned.length - count);
    await this.migrateSlots(health, source, target, slots);
    await this.waitForClusterOk(wait);
    return rangesOf(slots);
  }

  /**
   * Removes a whole shard: moves the primary's slots (with keys) evenly to the other primaries, stops
   * it and its replicas, makes every remaining node FORGET them, and deletes their folders.
   */
  async removePrimary(port: number, wait: WaitOptions = {}): Promise<void> {
    this.assertRunning('removePrimary');
    const health = await this.waitForClusterOk(wait);
    const victim = this.primaryEntry(health, port, 'removePrimary');
    const others = health.agreed
      .filter((e) => e.role === 'primary' && e.id !== victim.id)
      .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0));
    const owned = slotsOf(victim.slots);
    if (owned.length > 0 && others.length === 0) {
      throw new LocalClusterStateError(`removePrimary(${port}): no other primary to take its slots`);
    }
    const chunks = splitSlotRange(0, owned.length - 1, others.length);
    for (const [index, [first, last]] of chunks.entries()) {
      const target = others[index];
      if (target) await this.migrateSlots(health, victim, target, owned.slice(first, last + 1));
    }
    const removed = [...this.records.values()].filter((r) => r.id === victim.id || r.primaryId === victim.id);
    for (const record of removed) await this.terminate(record, 'SIGKILL');
    for (const record of removed) this.records.delete(record.port);
    this.updateTrackedPids();
    // Every remaining node must forget them within the 60 s ban FORGET sets, or gossip brings them back.
    await Promise.all(
      this.runningRecords().map((r) =>
        this.withAdmin(r.port, async (c) => {
          const known = new Set(
            parseClusterNodes(replyText(await c.call('CLUSTER', 'NODES'))).map((e) => e.id),
          );
          for (const gone of removed) if (known.has(gone.id)) await c.call('CLUSTER', 'FORGET', gone.id);
        }),
      ),
    );
    await Promise.all(removed.map((r) => rm(r.dir, { recursive: true, force: true })));
    await this.waitForClusterOk(wait);
  }

  /**
   * Waits until the running nodes form a healthy cluster (see assessClusterHealth: state ok,
   * replicas linked, one agreed slot map covering every slot) and refreshes the known roles.
   */
  async waitForClusterOk(wait: WaitOptions = {}): Promise<ClusterHealth> {
    this.assertRunning('waitForClusterOk');
    return this.waitForHealth('cluster_state ok on every node', wait.timeoutMs, (health) => health);
  }

  /** Kills every node and removes the folder. Idempotent; later calls return the same promise. */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  // ---------------------------------------------------------------------------------------------

  private async boot(startedAt: number): Promise<void> {
    const { primaries, replicasPerPrimary, startTimeoutMs } = this.options;
    const deadline = startedAt + startTimeoutMs;
    const remaining = () => Math.max(1000, deadline - performance.now());
    this.crashCleanup = CrashCleanup.arm(this.folder);
    if (this.options.tls) {
      this.tlsFiles = await generateTlsCertificates(join(this.folder, 'tls'));
      this.caPem = await readFile(this.tlsFiles.caFile, 'utf8');
    }
    const records = await this.startNewNodes(primaries * (1 + replicasPerPrimary), remaining());
    const primaryRecords = records.slice(0, primaries);
    const replicaRecords = records.slice(primaries);
    const slotRanges = splitAllSlots(primaries);
    // Distinct config epochs before the nodes meet (as redis-cli does): no epoch collisions to resolve.
    await Promise.all(
      records.map((record, index) =>
        this.withAdmin(record.port, async (c) => {
          await c.call('CLUSTER', 'SET-CONFIG-EPOCH', index + 1);
          const range = slotRanges[index];
          if (index < primaries && range) await c.call('CLUSTER', 'ADDSLOTSRANGE', range[0], range[1]);
        }),
      ),
    );
    const [first, ...others] = records;
    if (first) {
      await this.withAdmin(first.port, async (c) => {
        for (const other of others) await c.call('CLUSTER', 'MEET', HOST, other.port, other.busPort);
      });
    }
    const ids = new Set(records.map((r) => r.id));
    await pollUntil(
      async () => {
        const problems: string[] = [];
        await Promise.all(
          records.map(async (r) => {
            const entries = await this.withAdmin(r.port, async (c) =>
              parseClusterNodes(replyText(await c.call('CLUSTER', 'NODES'))),
            );
            const known = entries.filter((e) => ids.has(e.id) && !e.isIncomplete).length;
            if (known < ids.size) problems.push(`:${r.port} knows ${known}/${ids.size} nodes`);
          }),
        );
        return problems.length === 0 ? { done: true } : { problems };
      },
      {
        what: 'every node knowing every other',
        timeoutMs: remaining(),
        abortIf: () => this.stoppedError('start'),
      },
    );
    // Replica k replicates primary floor(k / R): R replicas each, in order.
    const assignments = replicaRecords.map((record, index) => {
      const primary = primaryRecords[Math.floor(index / replicasPerPrimary)] as NodeRecord;
      record.role = 'replica';
      record.primaryId = primary.id;
      return { record, primary };
    });
    await Promise.all(
      assignments.map(({ record, primary }) =>
        this.withAdmin(record.port, (c) => c.call('CLUSTER', 'REPLICATE', primary.id)),
      ),
    );
    await this.waitForClusterOk({ timeoutMs: remaining() });
    if (replicasPerPrimary > 0) await this.advertiseReplicas(primaryRecords, records, remaining());
    await this.crashCleanup.ready(remaining());
    this.startupMsValue = performance.now() - startedAt;
  }

  /**
   * Redis leaves a replica out of CLUSTER SLOTS (and shows it as `loading` in CLUSTER SHARDS) while its
   * replication offset is 0, i.e. until the first write. A FLUSHALL on each (still empty) primary is
   * replicated and leaves no key; then wait until every node lists every replica.
   */
  private async advertiseReplicas(
    primaries: readonly NodeRecord[],
    all: readonly NodeRecord[],
    timeoutMs: number,
  ) {
    await Promise.all(primaries.map((r) => this.withAdmin(r.port, (c) => c.call('FLUSHALL'))));
    const expected = all.length;
    await pollUntil(
      async () => {
        const problems: string[] = [];
        await Promise.all(
          all.map(async (r) => {
            const slots = (await this.withAdmin(r.port, (c) => c.call('CLUSTER', 'SLOTS'))) as unknown[][];
            const listed = new Set(
              slots.flatMap((range) => range.slice(2).map((holder) => String((holder as unknown[])[2]))),
            );
            if (listed.size < expected)
              problems.push(`:${r.port} lists ${listed.size}/${expected} nodes in CLUSTER SLOTS`);
          }),
        );
        return problems.length === 0 ? { done: true } : { problems };
      },
      { what: 'every replica listed in CLUSTER SLOTS', timeoutMs, abortIf: () => this.stoppedError('start') },
    );
  }

  /** Allocates ports and folders, spawns `count` nodes and waits until each answers (with its id). */
  private async startNewNodes(count: number, timeoutMs: number): Promise<NodeRecord[]> {
    const ports = await findFreePorts(count * 2);
    const records: NodeRecord[] = [];
    for (let i = 0; i < count; i++) {
      const port = ports[2 * i] as number;
      const record: NodeRecord = {
        port,
        busPort: ports[2 * i + 1] as number,
        dir: join(this.folder, `node-${port}`),
        id: '',
        role: 'primary',
        primaryId: undefined,
        state: 'stopped',
        process: undefined,
      };
      this.records.set(port, record);
      records.push(record);
    }
    await Promise.all(records.map((record) => this.spawnFreshNode(record, timeoutMs)));
    return records;
  }

  /**
   * Spawns a brand-new node; if it dies at start (most likely: another process took its port since
   * the check), it gets new ports and is tried again, twice at most.
   */
  private async spawnFreshNode(record: NodeRecord, timeoutMs: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(record.dir, { recursive: true });
        await this.spawnNode(record, timeoutMs);
        record.id = await this.withAdmin(record.port, async (c) =>
          replyText(await c.call('CLUSTER', 'MYID')),
        );
        return;
      } catch (error) {
        if (!(error instanceof RedisNodeStartError) || attempt >= 3 || !record.process?.hasExited)
          throw error;
        await rm(record.dir, { recursive: true, force: true });
        const [port, busPort] = (await findFreePorts(2)) as [number, number];
        this.records.delete(record.port);
        Object.assign(record, { port, busPort, dir: join(this.folder, `node-${port}`), process: undefined });
        this.records.set(port, record);
      }
    }
  }

  /** Writes the node's config (same port, folder, nodes.conf as before), spawns it, waits until loaded. */
  private async spawnNode(record: NodeRecord, timeoutMs: number): Promise<void> {
    const configFile = join(record.dir, 'redis.conf');
    await writeFile(
      configFile,
      buildNodeConfig({
        options: this.options,
        port: record.port,
        busPort: record.busPort,
        nodeDir: record.dir,
        adminPassword: this.adminPassword,
        tlsFiles: this.tlsFiles,
      }),
      { mode: 0o600 },
    );
    const overrides = [...this.configOverrides].flatMap(([name, value]) => [`--${name}`, value]);
    const child = await RedisNodeProcess.spawn(
      this.redisServerPath,
      configFile,
      [...this.options.extraArgs, ...overrides],
      record.dir,
      (_exit, exited) => {
        // A record outlives its processes (restarts): only its current one decides its state.
        if (record.process === exited) {
          record.state = 'stopped';
          this.updateTrackedPids();
        }
      },
    ).catch((error: unknown) => {
      throw new RedisNodeStartError(record.port, `cannot execute ${this.redisServerPath}: ${String(error)}`, {
        cause: error,
      });
    });
    record.process = child;
    record.state = 'running';
    this.updateTrackedPids();
    await pollUntil(
      async () => {
        const info = await this.withAdmin(record.port, async (c) =>
          replyText(await c.call('INFO', 'persistence')),
        );
        return parseInfo(info).get('loading') === '0'
          ? { done: true }
          : { problems: [`:${record.port} loading`] };
      },
      {
        what: `node :${record.port} answering`,
        timeoutMs,
        intervalMs: 50,
        abortIf: () =>
          child.hasExited
            ? new RedisNodeStartError(
                record.port,
                `redis-server :${record.port} exited at start (${child.exitInfo?.signal ?? `code ${child.exitInfo?.code}`}): ${child.logTail()}`,
              )
            : this.stoppedError('start node'),
      },
    );
  }

  private async terminate(record: NodeRecord, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = record.process;
    if (!child || child.hasExited) {
      record.state = 'stopped';
      return;
    }
    child.signal(signal);
    // A stopped process only acts on SIGTERM once it runs again.
    if (record.state === 'paused') child.signal('SIGCONT');
    if (!(await child.waitForExit(STOP_GRACE_MS))) {
      child.signal('SIGKILL');
      await child.waitForExit(STOP_GRACE_MS);
    }
    record.state = 'stopped';
    this.updateTrackedPids();
  }

  private async migrateSlots(
    health: ClusterHealth,
    source: ClusterNodeEntry,
    target: ClusterNodeEntry,
    slots: readonly number[],
  ): Promise<void> {
    const otherPrimaries = health.agreed.filter(
      (e) => e.role === 'primary' && e.id !== source.id && e.id !== target.id,
    );
    // The target may refuse the default user (disableDefaultUser): MIGRATE authenticates as the admin.
    const auth = ['AUTH2', ADMIN_USERNAME, this.adminPassword];
    await this.withAdmin(
      source.port,
      (src) =>
        this.withAdmin(
          target.port,
          async (dst) => {
            for (let start = 0; start < slots.length; start += SLOT_BATCH) {
              const batch = slots.slice(start, start + SLOT_BATCH);
              await Promise.all(
                batch.map((slot) => dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id)),
              );
              await Promise.all(
                batch.map((slot) => src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id)),
              );
              for (const slot of batch) {
                for (;;) {
                  const keys = (await src.callBuffer(
                    'CLUSTER',
                    'GETKEYSINSLOT',
                    slot,
                    MIGRATE_BATCH_KEYS,
                  )) as Buffer[];
                  if (keys.length === 0) break;
                  await src.call(
                    'MIGRATE',
                    HOST,
                    target.port,
                    '',
                    0,
                    MIGRATE_TIMEOUT_MS,
                    ...auth,
                    'KEYS',
                    ...keys,
                  );
                }
              }
              // Target first, then source (redis.io, CLUSTER SETSLOT), then everyone else so they
              // learn the new owner without waiting for gossip.
              await Promise.all(batch.map((slot) => dst.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id)));
              await Promise.all(batch.map((slot) => src.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id)));
            }
          },
          2 * MIGRATE_TIMEOUT_MS,
        ),
      2 * MIGRATE_TIMEOUT_MS,
    );
    await Promise.all(
      otherPrimaries.map((other) =>
        this.withAdmin(other.port, (c) =>
          Promise.all(slots.map((slot) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id))),
        ),
      ),
    );
  }

  private async waitForHealth<T>(
    what: string,
    timeoutMs: number | undefined,
    accept: (health: ClusterHealth) => T | undefined,
  ): Promise<T> {
    return pollUntil<T>(
      async () => {
        const health = await this.checkHealth();
        if (!health.ok) return { problems: health.problems };
        const accepted = accept(health);
        return accepted === undefined ? { problems: [`${what}: not yet`] } : { done: accepted };
      },
      { what, timeoutMs: timeoutMs ?? DEFAULT_WAIT_MS, abortIf: () => this.stoppedError(what) },
    );
  }

  /** One poll of every running node; refreshes roles when the cluster is healthy. */
  private async checkHealth(): Promise<ClusterHealth> {
    const running = this.runningRecords();
    const problems: string[] = [];
    const observations: NodeObservation[] = [];
    await Promise.all(
      running.map(async (record) => {
        try {
          observations.push(await this.observe(record));
        } catch (error) {
          problems.push(`:${record.port} ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    observations.sort((a, b) => a.port - b.port);
    const health = assessClusterHealth(observations, new Set(running.map((r) => r.id)));
    if (problems.length > 0)
      return { ok: false, problems: [...problems, ...health.problems], agreed: health.agreed };
    if (health.ok) {
      for (const entry of health.agreed) {
        const record = running.find((r) => r.id === entry.id);
        if (record) {
          record.role = entry.role;
          record.primaryId = entry.primaryId;
        }
      }
    }
    return health;
  }

  private observe(record: NodeRecord): Promise<NodeObservation> {
    return this.withAdmin(record.port, async (c) => {
      const [clusterInfo, nodes, replication] = await Promise.all([
        c.call('CLUSTER', 'INFO'),
        c.call('CLUSTER', 'NODES'),
        c.call('INFO', 'replication'),
      ]);
      return {
        port: record.port,
        clusterState: parseInfo(replyText(clusterInfo)).get('cluster_state'),
        masterLinkStatus: parseInfo(replyText(replication)).get('master_link_status'),
        nodes: parseClusterNodes(replyText(nodes)),
      };
    });
  }

  /** CLUSTER NODES of the first running node that answers. */
  private async readClusterNodes(): Promise<ClusterNodeEntry[]> {
    const errors: string[] = [];
    for (const record of this.runningRecords()) {
      try {
        return await this.withAdmin(record.port, async (c) =>
          parseClusterNodes(replyText(await c.call('CLUSTER', 'NODES'))),
        );
      } catch (error) {
        errors.push(`:${record.port} ${String(error)}`);
      }
    }
    throw new LocalClusterStateError(
      `no running node answered CLUSTER NODES (${errors.join('; ') || 'none running'})`,
    );
  }

  private primaryEntry(health: ClusterHealth, port: number, operation: string): ClusterNodeEntry {
    const record = this.record(port);
    const entry = health.agreed.find((e) => e.id === record.id);
    if (entry?.role !== 'primary' || record.state !== 'running') {
      throw new LocalClusterStateError(`${operation}: :${port} is not a running primary`);
    }
    return entry;
  }

  /**
   * A short-lived admin connection. The default command timeout (5 s) bounds a poll of a node that
   * hangs; migrations pass a longer one (a MIGRATE batch may take seconds).
   */
  private withAdmin<T>(
    port: number,
    use: (client: Redis) => Promise<T>,
    commandTimeoutMs?: number,
  ): Promise<T> {
    return withAdminConnection(this.adminSettings(port, commandTimeoutMs), use);
  }

  private adminSettings(port: number, commandTimeoutMs?: number): NodeConnectionSettings {
    return {
      host: HOST,
      port,
      tls: this.caPem !== undefined ? { ca: this.caPem } : undefined,
      username: ADMIN_USERNAME,
      password: this.adminPassword,
      ...(commandTimeoutMs !== undefined ? { commandTimeoutMs } : {}),
    };
  }

  private record(port: number): NodeRecord {
    const record = this.records.get(port);
    if (!record) throw new LocalClusterStateError(`no node of this cluster on port ${port}`);
    return record;
  }

  private runningRecords(): NodeRecord[] {
    return [...this.records.values()].filter((r) => r.state === 'running');
  }

  private updateTrackedPids(): void {
    const pids = [...this.records.values()]
      .filter((r) => r.process !== undefined && !r.process.hasExited)
      .map((r) => r.process?.pid as number);
    this.crashCleanup?.setPids(pids);
  }

  private stoppedError(operation: string): Error | undefined {
    return this.stopPromise ? new LocalClusterStoppedError(operation) : undefined;
  }

  private assertRunning(operation: string): void {
    const error = this.stoppedError(operation);
    if (error) throw error;
  }

  private async shutdown(): Promise<void> {
    const records = [...this.records.values()];
    for (const record of records) record.process?.signal('SIGKILL');
    await Promise.all(records.map((r) => r.process?.waitForExit(STOP_GRACE_MS)));
    for (const record of records) record.state = 'stopped';
    this.updateTrackedPids();
    await rm(this.folder, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    await this.crashCleanup?.disarm();
  }
}
