import { fileURLToPath } from 'node:url';
import { withTimeout } from '../../core/errors.ts';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  stallDetectionBoundMs,
} from '../../worker/expiry/subscription-heartbeat.ts';
import { ofEvent } from './chaos-accounting.ts';
import type { GuaranteeExpectations } from './chaos-guarantees.ts';
import { ChaosRunError } from './chaos-run.ts';
import type { ChaosScenario, ScenarioContext } from './chaos-scenario.ts';
import { clientPort, parseClientList } from './client-list.ts';
import {
  describeHolding,
  findLeaseHolders,
  hardestLeaseMember,
  isFamilyKey,
  type PrimaryHolding,
  publishingOnlyPrimary,
} from './lease-holders.ts';
import { queryNode } from './node-query.ts';
import { dropConnection } from './packet-filter.ts';
import { tcpLocalPorts } from './process-sockets.ts';
import type { FleetWorker } from './worker-fleet.ts';

/**
 * The chaos scenarios of `npm run chaos -- <name>` (docs/chaos.md describes each and what it proves).
 * Each `inject` runs while keys flow, after a warm-up with one leader and every worker subscribed; the
 * harness measures everything from outside.
 */

const LEADER_TAKEOVER_TIMEOUT_MS = 15_000;
const PROMOTION_TIMEOUT_MS = 30_000;
const WORKER_EXIT_TIMEOUT_MS = 15_000;
const WORKER_READY_TIMEOUT_MS = 30_000;
/** Pause of the leader in leader-sigstop: well past the 3 s lease TTL. */
const PAUSE_MS = 6000;
/**
 * After freezing or killing the leader, the harness waits this long before it reads the marks the
 * leader left: a mark write already on the wire lands first, and no successor can have written yet
 * (one acquires the lease no sooner than ~1 s later, the TTL minus the time since the last renewal).
 */
const MARK_SNAPSHOT_DELAY_MS = 200;
/** The worker's stated bound from the last byte read to a stall being declared (default options). */
export const STALL_DETECTION_BOUND_MS = stallDetectionBoundMs(
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_STALL_TIMEOUT_MS,
);
/** How long stalled-subscription waits for the detection before it gives up (well past the bound). */
const STALL_WAIT_TIMEOUT_MS = 15_000;
/** quiet-primary-handover: a short replay window (it must exceed 2 x (3 s TTL + 250 ms retry)). */
const QUIET_REPLAY_WINDOW_MS = 7000;
/** Past the window, its 1 s expiry tick and the last keys' 1 s TTL: no window holds the quiet primary. */
const QUIET_PHASE_MS = QUIET_REPLAY_WINDOW_MS + 3000;
/**
 * high-rate-crash: the leader's queue is this small, so that the replay after a crash (~3 s of events
 * at the scenario's rate) is many times larger than the queue at a rate CI can afford.
 */
const HIGH_RATE_CRASH_QUEUE_CAPACITY = 100;
const HIGH_RATE_CRASH_RATE = 1000;
/** slow-handler: a small queue and window bound, so the leader's backlog overflows within the run. */
const SLOW_HANDLER_QUEUE_CAPACITY = 2000;
const SLOW_HANDLER_MAX_EVENTS = 2000;
/** Slots moved from each original primary to the added one in scale-out-in. */
const SLOTS_MOVED_PER_PRIMARY = 512;

export const SLOW_HANDLER_PATH = fileURLToPath(new URL('./slow-handler.ts', import.meta.url));

const handover = (overrides: Partial<GuaranteeExpectations> = {}): GuaranteeExpectations => ({
  loss: 'no-loss',
  duplicates: 'handover',
  leaderChange: true,
  pausedLeaderIdle: false,
  allPublished: true,
  unsubscribedSeconds: 0,
  ...overrides,
});

function describeWorker(worker: FleetWorker): string {
  const role = worker.isLeader ? `leader, token ${worker.fencingToken ?? '?'}` : 'follower';
  return `${worker.id} (pid ${worker.pid ?? '?'}, ${role})`;
}

/** Reads the marks a leader that was just frozen or killed left behind (see MARK_SNAPSHOT_DELAY_MS). */
async function snapshotStoppedLeaderMarks(context: ScenarioContext, leader: FleetWorker): Promise<void> {
  if (leader.fencingToken === undefined) return;
  await context.sleep(MARK_SNAPSHOT_DELAY_MS);
  await context.snapshotMarks(leader.fencingToken);
}

async function signalLeader(context: ScenarioContext, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const leader = context.requireLeader();
  context.fault(`${signal} leader`, describeWorker(leader));
  context.fleet.signal(leader.id, signal);
  if (signal === 'SIGKILL') await snapshotStoppedLeaderMarks(context, leader);
  const next = await context.waitForLeader({
    notId: leader.id,
    aboveToken: leader.fencingToken ?? 0,
    timeoutMs: LEADER_TAKEOVER_TIMEOUT_MS,
  });
  context.note(`${next.id} leads now (token ${next.fencingToken})`);
  await withTimeout(context.fleet.exited(leader.id), WORKER_EXIT_TIMEOUT_MS, `${leader.id} exit`);
}

/** Kills (SIGKILL) or restarts (SIGTERM + start) a primary and declares its outage. */
async function faultPrimary(
  context: ScenarioContext,
  target: PrimaryHolding,
  how: 'kill' | 'restart',
): Promise<void> {
  const what = `holding ${describeHolding(target, context.leaderName)}`;
  const fromMs = context.now();
  if (how === 'kill') {
    context.fault('SIGKILL primary', `${target.address} ${what}`);
    await context.cluster.killNode(target.port);
    const promoted = await context.cluster.waitForPromotion(target.port, { timeoutMs: PROMOTION_TIMEOUT_MS });
    context.note(
      `replica :${promoted} promoted, cluster ok ${Math.round(context.now() - fromMs)} ms after the kill`,
    );
    context.onRestore(async () => {
      await context.cluster.restartNode(target.port, { timeoutMs: PROMOTION_TIMEOUT_MS });
    });
  } else {
    context.fault('restart primary', `${target.address} ${what} (SIGTERM, start again with its AOF)`);
    await context.cluster.restartNode(target.port, { timeoutMs: PROMOTION_TIMEOUT_MS });
    const primaries = await context.cluster.primaries();
    const stillPrimary = primaries.some((p) => p.port === target.port);
    context.note(
      `:${target.port} back ${Math.round(context.now() - fromMs)} ms after the stop, ` +
        (stillPrimary ? 'still the primary' : 'now a replica (its replica was promoted meanwhile)'),
    );
  }
  context.outage(target.address, fromMs, context.now());
}

const leaderSigkill: ChaosScenario = {
  name: 'leader-sigkill',
  summary: 'SIGKILL the leader; a follower takes over when the lease expires',
  proves:
    'a crashed leader costs no event: followers hold recent events and the new leader replays what the old one had not recorded as processed; fencing tokens only go up',
  profile: 'three-primaries',
  defaultDurationS: 10,
  expectations: handover(),
  inject: (context) => signalLeader(context, 'SIGKILL'),
};

const leaderSigterm: ChaosScenario = {
  name: 'leader-sigterm',
  summary:
    'SIGTERM the leader (an ECS stop); it drains, releases the lease and a follower takes over at once',
  proves: 'a graceful hand-over loses nothing and duplicates (almost) nothing',
  profile: 'three-primaries',
  defaultDurationS: 8,
  expectations: handover(),
  inject: (context) => signalLeader(context, 'SIGTERM'),
};

const leaderSigstop: ChaosScenario = {
  name: 'leader-sigstop',
  summary: `SIGSTOP the leader for ${PAUSE_MS / 1000} s (past its 3 s lease), then SIGCONT`,
  proves:
    'a leader frozen past its lease is replaced without loss, and once resumed it processes nothing with its old token (fencing by the monotonic deadline)',
  profile: 'three-primaries',
  defaultDurationS: 11,
  expectations: handover({ pausedLeaderIdle: true }),
  async inject(context) {
    const leader = context.requireLeader();
    const pausedAtMs = context.now();
    context.fault('SIGSTOP leader', describeWorker(leader));
    context.fleet.signal(leader.id, 'SIGSTOP');
    await snapshotStoppedLeaderMarks(context, leader);
    const next = await context.waitForLeader({
      notId: leader.id,
      aboveToken: leader.fencingToken ?? 0,
      timeoutMs: LEADER_TAKEOVER_TIMEOUT_MS,
    });
    context.note(`${next.id} leads now (token ${next.fencingToken})`);
    await context.sleep(pausedAtMs + PAUSE_MS - context.now());
    context.fault('SIGCONT old leader', `${leader.id} after ${Math.round(context.now() - pausedAtMs)} ms`);
    context.fleet.signal(leader.id, 'SIGCONT');
    // The run keeps keys flowing for minAfterFaultMs: time for the resumed worker to misbehave.
  },
};

const killLeasePrimary: ChaosScenario = {
  name: 'kill-lease-primary',
  summary: 'SIGKILL a primary that holds a member of the lease; its replica is promoted',
  proves:
    'losing one lease member does not stop processing: the lease lives on the other members, the workers follow the promoted replica, and no event of the other primaries is lost',
  profile: 'four-primaries',
  defaultDurationS: 10,
  expectations: handover({ leaderChange: false, allPublished: false, unsubscribedSeconds: 5 }),
  async inject(context) {
    const holders = await findLeaseHolders(context.cluster, context.leaderName);
    const target = hardestLeaseMember(holders, context.leaderName);
    if (!target) throw new ChaosRunError(`no primary holds a lease key of ${context.leaderName}`);
    await faultPrimary(context, target, 'kill');
  },
};

const killPublishingPrimary: ChaosScenario = {
  name: 'kill-publishing-primary',
  summary: 'SIGKILL a primary that holds no lease key (it only publishes expiries); its replica is promoted',
  proves:
    'the failover of a primary the lease does not live on costs nothing the cluster published: the workers follow the promoted replica, processing goes on (the leader may hand over once for coverage)',
  profile: 'four-primaries',
  defaultDurationS: 10,
  // Leadership may still move: a leader that lacked coverage for 2 s (the dead primary) hands over to
  // a follower that subscribed to the promoted replica first (README, "Coverage").
  expectations: handover({ leaderChange: false, allPublished: false, unsubscribedSeconds: 5 }),
  async inject(context) {
    const holders = await findLeaseHolders(context.cluster, context.leaderName);
    const target = publishingOnlyPrimary(holders, context.leaderName);
    if (!target) {
      throw new ChaosRunError(
        `every primary holds a lease key of ${context.leaderName} (${holders.map((h) => `${h.address}: ${h.leaseKeys.join(',')}`).join('; ')}): this scenario needs 4 or more primaries`,
      );
    }
    await faultPrimary(context, target, 'kill');
  },
};

const restartNode: ChaosScenario = {
  name: 'restart-node',
  summary: 'stop a primary holding a lease member (SIGTERM) and start it again with its AOF',
  proves:
    'a primary that goes away and comes back (same port, same data) is re-subscribed by every worker, the lease survives it, and no event of the other primaries is lost',
  profile: 'four-primaries',
  defaultDurationS: 10,
  expectations: handover({ leaderChange: false, allPublished: false, unsubscribedSeconds: 5 }),
  async inject(context) {
    const holders = await findLeaseHolders(context.cluster, context.leaderName);
    // A member that does not also hold the family keys: kill-lease-primary covers that one.
    const members = holders.filter((h) => h.leaseKeys.length > 0);
    const target = members.find((h) => !h.keys.some((k) => isFamilyKey(k, context.leaderName))) ?? members[0];
    if (!target) throw new ChaosRunError(`no primary holds a lease key of ${context.leaderName}`);
    await faultPrimary(context, target, 'restart');
  },
};

const scaleOutIn: ChaosScenario = {
  name: 'scale-out-in',
  summary: `add a primary and move ${SLOTS_MOVED_PER_PRIMARY} slots of each primary to it (with their keys), later move them back and remove it`,
  proves:
    'resharding while keys expire: the workers subscribe to the new primary and drop the removed one, and nothing published while a worker was subscribed is lost (a leader that subscribed to the new primary after a follower hands over to it)',
  profile: 'three-primaries',
  defaultDurationS: 14,
  expectations: {
    loss: 'no-loss',
    // Slots move at once here, often before a discovery saw the new node without slots: the leader
    // may then subscribe after a follower and hand over to it (docs/worker.md, "Subscriptions and the topology").
    duplicates: 'handover',
    leaderChange: false,
    pausedLeaderIdle: false,
    allPublished: true,
    unsubscribedSeconds: 5,
  },
  async inject(context) {
    const originals = await context.cluster.primaries();
    context.fault('add primary', 'CLUSTER MEET of a new empty node');
    const added = await context.cluster.addPrimary();
    for (const primary of originals) {
      await context.cluster.moveSlots(primary.port, added, SLOTS_MOVED_PER_PRIMARY);
    }
    context.note(`:${added} owns ${SLOTS_MOVED_PER_PRIMARY * originals.length} slots`);
    const primaries = (await context.cluster.primaries()).length;
    await context.waitFor(
      () => (context.fleet.live().every((w) => context.fleet.isCovered(w, primaries)) ? true : undefined),
      WORKER_READY_TIMEOUT_MS,
      `every worker subscribed to the ${primaries} primaries`,
    );
    await context.sleep(3000);
    context.fault('remove primary', `:${added}: slots moved back, node killed and forgotten`);
    await context.cluster.removePrimary(added);
    context.note(`:${added} removed`);
  },
};

const dropSubscribers: ChaosScenario = {
  name: 'drop-subscribers',
  summary: "CLIENT KILL the leader's subscriber connections on every primary, twice",
  proves:
    'a leader that loses its subscriptions (network blip, a proxy, Redis closing them) costs no event: it re-subscribes, or steps down for a fully covered follower that replays the gap',
  profile: 'three-primaries',
  defaultDurationS: 10,
  expectations: handover({ leaderChange: false }),
  async inject(context) {
    for (let round = 1; round <= 2; round++) {
      const leader = context.requireLeader();
      if (leader.pid === undefined) throw new ChaosRunError(`${leader.id} has no pid`);
      const ports = tcpLocalPorts(leader.pid);
      const primaries = await context.cluster.primaries();
      const victims: { port: number; id: string }[] = [];
      for (const primary of primaries) {
        const clients = parseClientList(
          String(await queryNode(context.cluster, primary.port, ['CLIENT', 'LIST', 'TYPE', 'pubsub'])),
        );
        for (const client of clients) {
          const port = clientPort(client);
          if (client.name === 'kl-subscriber' && port !== undefined && ports.has(port) && client.id) {
            victims.push({ port: primary.port, id: client.id });
          }
        }
      }
      if (victims.length === 0)
        throw new ChaosRunError(`no subscriber connection of ${leader.id} found on the primaries`);
      context.fault(
        'CLIENT KILL subscribers',
        `round ${round}: ${victims.length} subscriber connections of leader ${describeWorker(leader)}`,
      );
      await Promise.all(
        victims.map((victim) => queryNode(context.cluster, victim.port, ['CLIENT', 'KILL', 'ID', victim.id])),
      );
      await context.sleep(2500);
    }
  },
};

const slowHandler: ChaosScenario = {
  name: 'slow-handler',
  summary: `a handler far slower than the event rate (50 ms per call, 4 at a time: ~80 calls/s against 2,000 events/s) until the leader's backlog overflows its replay window (REPLAY_MAX_EVENTS=${SLOW_HANDLER_MAX_EVENTS} per primary, behind a ${SLOW_HANDLER_QUEUE_CAPACITY}-event queue)`,
  proves:
    'backpressure: the queue fills only as it has room, the backlog waits in the replay window, and what exceeds REPLAY_MAX_EVENTS is shed and counted (events.shed backlog-full); the worker stays subscribed (Redis never cuts it off for its output buffer), keeps its memory bounded, and every unprocessed event is accounted for as shed',
  profile: 'three-primaries',
  // Queue and backlog fill in ~4 s at 2,000 keys/s (~670 per primary and second).
  defaultRate: 2000,
  defaultDurationS: 10,
  workerEnv: {
    HANDLER: SLOW_HANDLER_PATH,
    HANDLER_CONCURRENCY: '4',
    CHAOS_HANDLER_DELAY_MS: '50',
    HANDLER_QUEUE_CAPACITY: String(SLOW_HANDLER_QUEUE_CAPACITY),
    REPLAY_MAX_EVENTS: String(SLOW_HANDLER_MAX_EVENTS),
  },
  backpressure: true,
  expectations: {
    loss: 'shed-accounts',
    duplicates: 'steady',
    leaderChange: false,
    pausedLeaderIdle: false,
    allPublished: true,
    unsubscribedSeconds: 0,
  },
  async inject(context) {
    const leader = context.requireLeader();
    context.fault(
      'slow handler',
      `${describeWorker(leader)} handles ~80 events/s at ${context.rate} events/s`,
    );
    const shed = await context.waitFor(
      () =>
        context.fleet.records.filter(ofEvent('events.shed')).find((r) => r.fields.reason === 'backlog-full'),
      30_000,
      'the backlog overflowing (events.shed backlog-full)',
    );
    context.note(`backlog full: ${shed.workerId} sheds (first events.shed count ${shed.fields.count})`);
  },
};

const rollingRestart: ChaosScenario = {
  name: 'rolling-restart',
  summary:
    'replace every worker one by one like an ECS deploy: start a new one, wait until it is subscribed, SIGTERM an old one',
  proves:
    'a deploy that replaces every task, the leader included, loses nothing and keeps fencing tokens increasing',
  profile: 'three-primaries',
  defaultDurationS: 14,
  expectations: handover(),
  async inject(context) {
    const originals = context.fleet.live().map((w) => w.id);
    for (const id of originals) {
      const fresh = context.fleet.spawn();
      await context.waitForCovered(fresh, WORKER_READY_TIMEOUT_MS);
      const old = context.fleet.get(id);
      if (!old) continue;
      context.fault('SIGTERM worker', `${describeWorker(old)}, replaced by ${fresh}`);
      context.fleet.signal(id, 'SIGTERM');
      await withTimeout(context.fleet.exited(id), WORKER_EXIT_TIMEOUT_MS, `${id} exit`);
    }
  },
};

const gracefulFailover: ChaosScenario = {
  name: 'graceful-failover',
  summary:
    'CLUSTER FAILOVER on the replica of a primary that publishes expiries (what ElastiCache does for maintenance, patching and scaling): the replica becomes the primary, the old primary its replica',
  proves:
    "a planned failover loses nothing: every worker holds a subscription to each replica in advance, so the promoted node's first events are received before any topology discovery sees the promotion",
  profile: 'three-primaries',
  defaultRate: 300,
  defaultDurationS: 8,
  // No outage (writes pause for the hand-over only) and no worker without a subscription to the
  // promoted node at any moment: every key it publishes is expected.
  expectations: handover({ leaderChange: false, unsubscribedSeconds: 0 }),
  async inject(context) {
    // The last primary by slot order: any primary publishes expiries, the choice only has to be stable.
    const target = (await context.cluster.primaries()).at(-1);
    if (!target) throw new ChaosRunError('no primary to fail over');
    context.fault('CLUSTER FAILOVER', `on the replica of ${target.host}:${target.port}`);
    const fromMs = context.now();
    const promoted = await context.cluster.failover(target.port, { timeoutMs: PROMOTION_TIMEOUT_MS });
    context.note(
      `replica :${promoted} is the primary, :${target.port} its replica, cluster ok ${Math.round(context.now() - fromMs)} ms after the command`,
    );
  },
};

const stalledSubscription: ChaosScenario = {
  name: 'stalled-subscription',
  summary:
    "drop every packet of the leader's subscriber connection to one primary (iptables on loopback), closing nothing",
  proves: `a subscription that stalls without closing is noticed by the heartbeat within ${STALL_DETECTION_BOUND_MS} ms of its last byte and handled like a gap: the leader hands over to a follower that stayed subscribed, which replays from the marks, and the connection is dropped and re-established; nothing is lost and the delay is bounded by the detection plus the hand-over`,
  profile: 'three-primaries',
  defaultDurationS: 10,
  expectations: handover(),
  async inject(context) {
    const leader = context.requireLeader();
    if (leader.pid === undefined) throw new ChaosRunError(`${leader.id} has no pid`);
    const target = (await context.cluster.primaries())[0];
    if (!target) throw new ChaosRunError('no primary');
    const address = `${target.host}:${target.port}`;
    const ports = tcpLocalPorts(leader.pid);
    const clients = parseClientList(
      String(await queryNode(context.cluster, target.port, ['CLIENT', 'LIST', 'TYPE', 'pubsub'])),
    );
    const clientPorts = clients
      .filter((c) => c.name === 'kl-subscriber')
      .map(clientPort)
      .filter((port): port is number => port !== undefined && ports.has(port));
    const victimPort = clientPorts[0];
    if (victimPort === undefined || clientPorts.length !== 1) {
      throw new ChaosRunError(
        `expected one subscriber connection of ${leader.id} on ${address}, found ${clientPorts.length}`,
      );
    }
    context.fault(
      'drop subscriber packets',
      `${describeWorker(leader)}: its connection :${victimPort} -> ${address}, every packet dropped, nothing closed`,
    );
    const dropped = await dropConnection({ clientPort: victimPort, serverPort: target.port });
    context.onRestore(() => dropped.remove());
    const fromMs = context.now();
    try {
      const stalled = await context.waitFor(
        () =>
          context.fleet.records.find(
            (r) =>
              r.workerId === leader.id &&
              r.event === 'subscription.stalled' &&
              r.fields.node === address &&
              r.atMs >= Math.floor(fromMs),
          ),
        STALL_WAIT_TIMEOUT_MS,
        `${leader.id} noticing its stalled subscription to ${address}`,
      );
      context.measure('stallDetectedAfterMs', stalled.atMs - fromMs);
      context.note(
        `${leader.id} declared ${address} stalled ${Math.round(stalled.atMs - fromMs)} ms after the drop (bound ${STALL_DETECTION_BOUND_MS} ms from its last byte)`,
      );
      const resubscribed = await context.waitFor(
        () =>
          context.fleet.records.find(
            (r) =>
              r.workerId === leader.id &&
              r.event === 'subscription.up' &&
              r.fields.node === address &&
              r.atMs >= stalled.atMs,
          ),
        STALL_WAIT_TIMEOUT_MS,
        `${leader.id} subscribed to ${address} again on a new connection`,
      );
      context.measure('resubscribedAfterMs', resubscribed.atMs - fromMs);
    } finally {
      await dropped.remove();
    }
  },
};

const quietPrimaryHandover: ChaosScenario = {
  name: 'quiet-primary-handover',
  summary: `keys stop flowing to one primary for ${QUIET_PHASE_MS / 1000} s (past the ${QUIET_REPLAY_WINDOW_MS / 1000} s replay window), SIGKILL the leader, then keys flow to that primary again`,
  proves:
    'a primary with no event in any window at a hand-over keeps unique event ids: the new leader reads the mark of every known primary and numbers the quiet one above its reservation (0 lost, 0 ids naming two keys)',
  profile: 'three-primaries',
  defaultDurationS: 20,
  workerEnv: { REPLAY_WINDOW_MS: String(QUIET_REPLAY_WINDOW_MS) },
  expectations: handover(),
  async inject(context) {
    const primaries = await context.cluster.primaries();
    const quiet = primaries[primaries.length - 1];
    if (!quiet || primaries.length < 2)
      throw new ChaosRunError('quiet-primary-handover needs two primaries or more');
    const quietSuffix = `:${quiet.port}`;
    context.note(`keys to every primary but :${quiet.port} for ${QUIET_PHASE_MS} ms`);
    context.restrictKeys((owner) => owner !== undefined && !owner.endsWith(quietSuffix));
    await context.sleep(QUIET_PHASE_MS);
    await signalLeader(context, 'SIGKILL');
    context.restrictKeys(undefined);
    context.note(`keys flow to :${quiet.port} again`);
  },
};

const highRateCrash: ChaosScenario = {
  name: 'high-rate-crash',
  summary: `SIGKILL the leader at ${HIGH_RATE_CRASH_RATE} keys/s with a ${HIGH_RATE_CRASH_QUEUE_CAPACITY}-event handler queue: the replay is ~30 times the queue`,
  proves:
    'a replay larger than the processor queue is paced (back-pressure from the queue to the replay window), not shed: the new leader handles all of it, in order per primary, and then the live events that waited behind it',
  profile: 'three-primaries',
  defaultRate: HIGH_RATE_CRASH_RATE,
  defaultDurationS: 8,
  workerEnv: { HANDLER_QUEUE_CAPACITY: String(HIGH_RATE_CRASH_QUEUE_CAPACITY) },
  expectations: handover(),
  inject: (context) => signalLeader(context, 'SIGKILL'),
};

export const CHAOS_SCENARIOS: readonly ChaosScenario[] = [
  leaderSigkill,
  leaderSigterm,
  leaderSigstop,
  killLeasePrimary,
  killPublishingPrimary,
  restartNode,
  scaleOutIn,
  dropSubscribers,
  slowHandler,
  rollingRestart,
  gracefulFailover,
  stalledSubscription,
  quietPrimaryHandover,
  highRateCrash,
];

export function findScenario(name: string): ChaosScenario | undefined {
  return CHAOS_SCENARIOS.find((s) => s.name === name);
}
