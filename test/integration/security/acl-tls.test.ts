import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyCheckAccessString, workerAccessString } from '../../../core/acl.ts';
import { keySlot } from '../../../core/key-slot.ts';
import { KeyspaceKeys } from '../../../core/keys.ts';
import type { NotifyCheckReport } from '../../../lambdas/notify-check/report.ts';
import { LocalRedisCluster } from '../../../local/cluster.ts';
import { decodeOutboxValue } from '../../../worker/handlers/outbox-value.ts';
import { randomSuffix, readOutbox, testClient, WorkerProcess } from '../worker/helpers.ts';
import {
  aclLog,
  type CommandRun,
  randomPassword,
  resetAclLog,
  runReport,
  tlsUserEnv,
} from './tls-acl-helpers.ts';

/**
 * The worker and the scheduled check under the least-privilege users of core/acl.ts, on a TLS-only
 * cluster whose default user is off: the same access strings the CDK stack gives the ElastiCache
 * RBAC users. The ACL log of every node is the proof that the strings are complete for what ran:
 * any command, key or channel a program needed and lacked is logged there.
 */

const leaderName = `sec-${randomSuffix()}`;
const keys = new KeyspaceKeys(leaderName);
const USERS = {
  worker: { name: 'kl-worker', password: randomPassword('worker') },
  check: { name: 'kl-check', password: randomPassword('check') },
  checkConfig: { name: 'kl-check-config', password: randomPassword('check-config') },
  /** A worker with KEY_PATTERN=app:* (precise expiry reads only those user keys). */
  workerApp: { name: 'kl-worker-app', password: randomPassword('worker-app') },
};
const PASSWORDS = Object.values(USERS).map((u) => u.password);
/**
 * A value the worker captures (issue 14): user data, which must reach the handler (the outbox) and
 * nothing the worker prints (README "Values"). Searched for as text and as the encodings a careless
 * log line would give it (hex, base64, a JSON-serialised Buffer's byte list).
 */
/**
 * TTL of the keys holding the secret value: long enough for their `expire` events' lookups to track
 * them before their read-ahead time (the default EXPIRY_READ_AHEAD_MS, 20 ms, before the deadline).
 */
const SECRET_TTL_MS = 400;
const VALUE_SECRET = `VALUE-SECRET-${randomSuffix()}${randomSuffix()}`;
const VALUE_SECRET_FORMS = [
  VALUE_SECRET,
  Buffer.from(VALUE_SECRET).toString('hex'),
  Buffer.from(VALUE_SECRET).toString('base64'),
  Buffer.from(VALUE_SECRET).join(','),
];

let cluster: LocalRedisCluster;
let admin: Cluster;
const printed: string[] = [];

function reportOf(run: CommandRun): NotifyCheckReport {
  printed.push(run.stdout, run.stderr);
  expect(run.code, run.stderr.slice(-2000)).toBe(0);
  return JSON.parse(run.stdout) as NotifyCheckReport;
}

beforeAll(async () => {
  cluster = await LocalRedisCluster.start({
    tls: true,
    disableDefaultUser: true,
    // Off at start: the check (with CONFIG rights) is what turns notifications on.
    users: [
      { ...USERS.worker, access: workerAccessString(leaderName) },
      { ...USERS.workerApp, access: workerAccessString(leaderName, { keyPattern: 'app:*' }) },
      { ...USERS.check, access: notifyCheckAccessString(leaderName, { configRights: false }) },
      { ...USERS.checkConfig, access: notifyCheckAccessString(leaderName, { configRights: true }) },
    ],
  });
  admin = testClient(cluster);
  await resetAclLog(cluster);
});

afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
});

describe('least-privilege users on a TLS-only cluster', () => {
  let worker: WorkerProcess | undefined;
  afterAll(async () => {
    await worker?.kill();
  });

  it('the check with CONFIG rights enables notifications and verifies every primary', async () => {
    const report = reportOf(
      await runReport(
        tlsUserEnv(cluster, USERS.checkConfig, { LEADER_NAME: leaderName, NOTIFY_MODE: 'config' }),
      ),
    );
    expect(report.nodes).toHaveLength(cluster.nodes.length);
    for (const node of report.nodes)
      expect(node, node.address).toMatchObject({ status: 'repaired', configured: true });
    expect(report.canaries).toHaveLength(3);
    expect(report.metrics.PrimariesVerified).toBe(3);
    // Precise expiry (the default): Egx enforced, and the check (expire channel granted) saw them flow.
    for (const node of report.nodes) expect(node.after, node.address).toBe('gxE');
    expect(report.canaries.map((c) => c.expireEventsFlow)).toEqual([true, true, true]);
    expect(report.leader.state).toBe('none');
  });

  it('the worker leads and processes expiries, writing the fenced outbox (HANDLER=stream)', async () => {
    worker = WorkerProcess.start(
      'sec-worker',
      tlsUserEnv(cluster, USERS.worker, {
        LEADER_NAME: leaderName,
        HANDLER: 'stream',
        WORKER_ID: 'sec-worker',
        // The default read-ahead: the secret keys' reads are this worker's first on each primary
        // (EVALSHA_RO meets NOSCRIPT, then EVAL_RO: 13-28 ms over TLS here, longer than the 20 ms
        // read-ahead), and each key's touch waits for its read's answer (expiry-toucher.ts).
      }),
    );
    const acquired = await worker.waitForEvent('leader.acquired', 30_000);
    const prefix = `app-${randomSuffix()}`;
    const expiring = Array.from({ length: 30 }, (_, i) => `${prefix}:${i}`);
    // Two more hold the secret value: a string and a hash (the value-read script under this ACL),
    // with a TTL past the read-ahead, so that they are read at their read-ahead time.
    const secretString = `${prefix}:secret-string`;
    const secretHash = `${prefix}:secret-hash`;
    await Promise.all([
      ...expiring.map((key) => admin.set(key, '1', 'PX', 100)),
      admin.set(secretString, VALUE_SECRET, 'PX', SECRET_TTL_MS),
      admin.hset(secretHash, 'token', VALUE_SECRET).then(() => admin.pexpire(secretHash, SECRET_TTL_MS)),
    ]);
    expiring.push(secretString, secretHash);
    await worker.waitFor(
      (w) => {
        const done = new Set(w.events('key.processed').map((l) => l.key));
        return expiring.every((k) => done.has(k)) ? w.lines[w.lines.length - 1] : undefined;
      },
      20_000,
      'every key processed',
    );
    for (const line of worker.events('key.processed')) expect(line.fencingToken).toBe(acquired.fencingToken);
    // On-time expiry ran under this user: the keys were tracked (PEXPIRETIME: a deadline on their
    // key.processed lines) and each primary's clock was read (TIME); the ACL log test below shows no refusal.
    expect(
      worker.events('key.processed').filter((l) => typeof l.deadlineMs === 'number').length,
    ).toBeGreaterThan(0);
    expect(worker.events('expiry.clock_offset').length).toBeGreaterThan(0);
    let appended = 0;
    for (let p = 0; p < 16; p++) appended += await admin.xlen(keys.outbox(p));
    expect(appended).toBeGreaterThanOrEqual(expiring.length);
    expect(Number(await admin.get(keys.outboxFence(0)))).toBeLessThanOrEqual(Number(acquired.fencingToken));
    // Value capture ran under this user (%R~* and the read-only script, core/acl.ts): the secret
    // values reached the handler, in the outbox; key.processed has only their type and size.
    const handed = new Map<string, unknown>();
    for (const entry of await readOutbox(admin, leaderName)) {
      const key = entry.fields.get('key')?.toString('latin1') ?? '';
      const valueType = entry.fields.get('valueType')?.toString('latin1');
      const value = entry.fields.get('value');
      if (key === secretString || key === secretHash)
        handed.set(
          key,
          valueType !== undefined && value !== undefined
            ? decodeOutboxValue(valueType, value)
            : { valueMissing: entry.fields.get('valueMissing')?.toString('latin1') },
        );
    }
    expect(handed.get(secretString)).toEqual({ type: 'string', bytes: Buffer.from(VALUE_SECRET) });
    expect(handed.get(secretHash)).toEqual({
      type: 'hash',
      fields: [[Buffer.from('token'), Buffer.from(VALUE_SECRET)]],
    });
    const sizes = new Map(
      worker
        .events('key.processed')
        .map((l) => [l.key as string, [l.valueType, l.valueBytes, l.valueMissing]] as const),
    );
    expect(sizes.get(secretString)).toEqual(['string', VALUE_SECRET.length, undefined]);
    expect(sizes.get(secretHash)).toEqual(['hash', 'token'.length + VALUE_SECRET.length, undefined]);
  });

  it('the check without CONFIG rights reports the leader and the primaries, and CONFIG as not enforceable', async () => {
    const configMode = reportOf(
      await runReport(tlsUserEnv(cluster, USERS.check, { LEADER_NAME: leaderName, NOTIFY_MODE: 'config' })),
    );
    expect(configMode.leader).toMatchObject({ state: 'leading', workerId: 'sec-worker' });
    expect(configMode.metrics.PrimariesVerified).toBe(3);
    for (const node of configMode.nodes) {
      expect(node, node.address).toMatchObject({ status: 'refused', configured: false });
      expect(node.error).toMatch(/^NOPERM/);
    }

    const autoMode = reportOf(
      await runReport(tlsUserEnv(cluster, USERS.check, { LEADER_NAME: leaderName, NOTIFY_MODE: 'auto' })),
    );
    expect(autoMode.metrics.PrimariesVerified).toBe(3);
    for (const node of autoMode.nodes) expect(node.error).toMatch(/not enforceable/);
    expect(autoMode.problems.join('\n')).toMatch(/not enforceable/);
  });

  it('the worker releases on SIGTERM and exits 0', async () => {
    const running = worker as WorkerProcess;
    running.signal('SIGTERM');
    const exit = await running.exited;
    printed.push(JSON.stringify(running.lines), JSON.stringify(running.metricDocuments), running.stderr);
    expect(exit.code, running.tail()).toBe(0);
    expect(running.events('leader.released')).toHaveLength(1);
  });

  it('left nothing in any ACL log: every command, key and channel used was granted', async () => {
    const entries = await aclLog(cluster);
    // The only expected refusal: CONFIG for the user that is meant not to have it.
    const unexpected = entries.filter((e) => !(e.username === USERS.check.name && e.object === 'config|get'));
    expect(unexpected).toEqual([]);
    expect(entries.some((e) => e.username === USERS.check.name)).toBe(true);
  });

  it('printed no password and no captured value anywhere (worker and report, stdout and stderr)', () => {
    const output = printed.join('\n');
    expect(output.length).toBeGreaterThan(1000);
    for (const password of PASSWORDS) expect(output).not.toContain(password);
    // The worker's lines are in `printed` (JSON of every line it wrote, its EMF documents, stderr).
    expect(output).toContain('sec-worker');
    for (const form of VALUE_SECRET_FORMS) expect(output).not.toContain(form);
  });
});

describe('commands outside the access strings are refused (NOPERM)', () => {
  const asUser = async (user: { name: string }, fn: (client: Cluster) => Promise<void>) => {
    const client = new Cluster(cluster.seeds, {
      redisOptions: { ...cluster.clientOptions({ user: user.name }), connectTimeout: 2000 },
      clusterRetryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      await fn(client);
    } finally {
      client.disconnect();
    }
  };

  it('the worker user reaches only its own keys and commands', async () => {
    await asUser(USERS.worker, async (w) => {
      expect(await w.set(keys.lease, 'probe', 'PX', 1000)).toBe('OK');
      await w.del(keys.lease);
      // Precise expiry with KEY_PATTERN `*`: user keys are readable (read-only), never writable.
      await expect(w.set('orders:1', 'x')).rejects.toThrow(/^NOPERM/);
      await expect(w.del('orders:1')).rejects.toThrow(/^NOPERM/);
      await expect(w.set(new KeyspaceKeys(`${leaderName}x`).leader, '{}')).rejects.toThrow(/^NOPERM/);
      await expect(w.set(keys.canary(0, 'x'), '1')).rejects.toThrow(/^NOPERM/);
      await expect(w.call('CONFIG', 'GET', 'notify-keyspace-events')).rejects.toThrow(/^NOPERM/);
      await expect(w.call('FLUSHALL')).rejects.toThrow(/^NOPERM/);
      await expect(w.call('KEYS', '*')).rejects.toThrow(/^NOPERM/);
      await expect(w.call('ACL', 'WHOAMI')).rejects.toThrow(/^NOPERM/);
      await expect(w.lpush(keys.leader, 'v')).rejects.toThrow(/^NOPERM/);
      await expect(w.publish('{kl:other}:released', 'x')).rejects.toThrow(/^NOPERM/);
      // Channel rules do not tell PUBLISH from SUBSCRIBE: the worker, which publishes `released`, could
      // also publish on the expired channel (docs/security.md, "What the strings do not prevent").
    });
  });

  it('the worker user runs what on-time expiry needs: PEXPIRETIME on user keys, SCAN, TIME, COMMAND INFO, the expire channel', async () => {
    const userKey = `orders:${randomSuffix()}`;
    await admin.set(userKey, '1', 'PX', 60_000);
    await asUser(USERS.worker, async (w) => {
      const deadline = Number(await w.pexpiretime(userKey));
      expect(deadline).toBeGreaterThan(Date.now());
      expect(await w.pexpiretime(`${userKey}:absent`)).toBe(-2);
      await expect(w.set(userKey, '2')).rejects.toThrow(/^NOPERM/);
      await expect(w.pexpire(userKey, 1)).rejects.toThrow(/^NOPERM/);
      await expect(w.call('PERSIST', userKey)).rejects.toThrow(/^NOPERM/);
    });
    await asUser(USERS.workerApp, async (w) => {
      // KEY_PATTERN=app:* : only those user keys are readable.
      await expect(w.pexpiretime(userKey)).rejects.toThrow(/^NOPERM/);
      await admin.set('app:probe', '1', 'PX', 60_000);
      expect(Number(await w.pexpiretime('app:probe'))).toBeGreaterThan(Date.now());
      await expect(w.set('app:probe', '2')).rejects.toThrow(/^NOPERM/);
    });
    // SCAN, TIME, COMMAND INFO and SUBSCRIBE run per node: a node connection, as worker/expiry/ opens.
    const primaries = await cluster.primaries();
    const owner = primaries.find((p) =>
      p.slots.some(([a, b]) => keySlot(userKey) >= a && keySlot(userKey) <= b),
    );
    const node = new Redis({
      host: '127.0.0.1',
      port: owner?.port,
      ...cluster.clientOptions({ user: USERS.worker.name }),
    });
    const subscriber = new Redis({
      host: '127.0.0.1',
      port: owner?.port,
      ...cluster.clientOptions({ user: USERS.worker.name }),
    });
    node.on('error', () => {});
    subscriber.on('error', () => {});
    try {
      const [cursor, found] = (await node.scan('0', 'COUNT', 1000)) as [string, string[]];
      expect(typeof cursor).toBe('string');
      // SCAN returns every key name on the node: the ACL key rules do not filter it (docs/security.md).
      expect(Array.isArray(found)).toBe(true);
      const [seconds] = (await node.time()) as unknown as [string, string];
      expect(Math.abs(Number(seconds) * 1000 - Date.now())).toBeLessThan(60_000);
      const info = (await node.call('COMMAND', 'INFO', 'PEXPIRETIME')) as unknown[];
      expect(info[0]).not.toBeNull();
      await expect(node.call('COMMAND', 'DOCS', 'GET')).rejects.toThrow(/^NOPERM/);
      const received = new Promise<string>((resolve) => {
        subscriber.on('message', (channel: string, message: string) => {
          if (channel === '__keyevent@0__:expire' && message === userKey) resolve(message);
        });
      });
      await subscriber.subscribe('__keyevent@0__:expire');
      await admin.pexpire(userKey, 30_000);
      expect(await received).toBe(userKey);
    } finally {
      node.disconnect();
      subscriber.disconnect();
      await admin.del(userKey);
      await admin.del('app:probe');
    }
  });

  it('the check user writes canaries and cannot touch the lease or the leader record', async () => {
    // The check talks to single nodes (no Cluster client, so no CLUSTER SLOTS): send each key to its primary.
    const primaries = await cluster.primaries();
    const onOwner = async (key: string, fn: (client: Redis) => Promise<unknown>) => {
      const slot = keySlot(key);
      const owner = primaries.find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
      const client = new Redis({
        host: '127.0.0.1',
        port: owner?.port,
        ...cluster.clientOptions({ user: USERS.check.name }),
      });
      client.on('error', () => {});
      try {
        return await fn(client);
      } finally {
        client.disconnect();
      }
    };
    expect(
      await onOwner(keys.canary(3, 'probe'), (c) => c.set(keys.canary(3, 'probe'), '1', 'PX', 1000)),
    ).toBe('OK');
    expect(await onOwner(keys.leader, (c) => c.get(keys.leader))).not.toBeNull();
    await expect(onOwner(keys.leader, (c) => c.set(keys.leader, '{}'))).rejects.toThrow(/^NOPERM/);
    await expect(onOwner(keys.lease, (c) => c.set(keys.lease, 'x'))).rejects.toThrow(/^NOPERM/);
    await expect(onOwner(keys.epoch, (c) => c.get(keys.epoch))).rejects.toThrow(/^NOPERM/);
    await expect(onOwner(keys.leader, (c) => c.publish('__keyevent@0__:expired', 'forged'))).rejects.toThrow(
      /^NOPERM/,
    );
    await expect(
      onOwner(keys.leader, (c) => c.call('CONFIG', 'SET', 'notify-keyspace-events', '')),
    ).rejects.toThrow(/^NOPERM/);
    await expect(onOwner(keys.leader, (c) => c.call('CLUSTER', 'SLOTS'))).rejects.toThrow(/^NOPERM/);
  });
});
