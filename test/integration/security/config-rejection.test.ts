import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomPassword, runCommand } from './tls-acl-helpers.ts';

/**
 * `npm run worker` and `npm run report` with every variable of README.md, "Configuration", wrong at once (type,
 * range, combination): exit 78, every variable listed, nothing connected, no secret printed. REDIS_NODES
 * is the one valid variable: it points at a listener that counts connection attempts.
 */

const PASSWORD = randomPassword('config');
let listener: Server;
let listenerPort: number;
let connections = 0;

beforeAll(async () => {
  listener = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  listenerPort = (listener.address() as { port: number }).port;
});

afterAll(() => {
  listener?.close();
});

const base = () => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  REDIS_NODES: `127.0.0.1:${listenerPort}`,
  REDIS_PASSWORD: PASSWORD,
});

/** [variable, wrong value]; each must be named on stderr. */
const SHARED: [string, string][] = [
  ['REDIS_TLS', 'yes'],
  ['REDIS_TLS_CA_FILE', '/nonexistent/ca.pem'],
  ['LEADER_NAME', 'orders}*'],
  ['LOG_LEVEL', 'verbose'],
  ['METRICS_NAMESPACE', 'Keyspace Leader!'],
];

const WORKER: [string, string][] = [
  ...SHARED,
  ['WORKER_ID', 'w'.repeat(513)],
  ['LEASE_TTL_MS', '-3000'],
  ['LEASE_RENEW_INTERVAL_MS', 'soon'],
  ['LEASE_RENEW_DEADLINE_MS', '0'],
  ['LEASE_RETRY_MS', '1.5'],
  ['HANDLER', './no/such/handler.mjs'],
  ['HANDLER_CONCURRENCY', '0'],
  ['HANDLER_TIMEOUT_MS', '-1'],
  ['KEY_PATTERN', '*'.repeat(1025)],
];

const REPORT: [string, string][] = [
  ...SHARED,
  ['NOTIFY_MODE', 'manual'],
  ['ECS_CLUSTER', 'workers'],
  ['CANARY_TIMEOUT_MS', '10'],
];

function expectRejected(run: { code: number | null; stdout: string; stderr: string }, variables: string[]) {
  expect(run.code, run.stderr).toBe(78);
  expect(run.stderr).toMatch(/invalid configuration, \d+ problem\(s\); nothing was started/);
  for (const variable of variables) expect(run.stderr, variable).toContain(variable);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stdout + run.stderr).not.toContain(PASSWORD);
}

describe('invalid configuration is refused at start, all at once', () => {
  it('npm run worker: exit 78, every variable listed, no connection attempted', async () => {
    const run = await runCommand(['npm', 'run', '--silent', 'worker'], {
      ...base(),
      ...Object.fromEntries(WORKER),
    });
    expectRejected(
      run,
      WORKER.map(([v]) => v),
    );
    expect(connections).toBe(0);
  });

  it('npm run worker: the lease rules as combinations (renew interval >= TTL, retry >= TTL)', async () => {
    const run = await runCommand(['npm', 'run', '--silent', 'worker'], {
      ...base(),
      LEASE_TTL_MS: '1000',
      LEASE_RENEW_INTERVAL_MS: '1000',
      LEASE_RENEW_DEADLINE_MS: '800',
      LEASE_RETRY_MS: '1000',
      REDIS_USERNAME: 'kl-worker',
      REDIS_PASSWORD: '',
    });
    expectRejected(run, ['LEASE_RENEW_INTERVAL_MS', 'LEASE_RETRY_MS', 'REDIS_USERNAME']);
    expect(connections).toBe(0);
  });

  it('npm run report: exit 78, every variable listed, no connection attempted', async () => {
    const run = await runCommand(['npm', 'run', '--silent', 'report', '--', '--json'], {
      ...base(),
      ...Object.fromEntries(REPORT),
    });
    expectRejected(run, [...REPORT.map(([v]) => v).filter((v) => v !== 'ECS_CLUSTER'), 'ECS_SERVICE']);
    expect(run.stdout).toBe('');
    expect(connections).toBe(0);
  });
});
