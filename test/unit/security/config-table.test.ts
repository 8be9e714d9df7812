import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseReportConfig, parseWorkerConfig } from '../../../core/config.ts';
import { ConfigError, type ConfigIssue } from '../../../core/errors.ts';

/**
 * Hostile and mistaken configuration, variable by variable (README.md, "Configuration", with the additions the
 * parsers know): each wrong type, range or combination is refused with an issue naming the variable,
 * and all of them together are listed at once.
 */

function issuesOf(parse: () => unknown): readonly ConfigIssue[] {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

const dir = mkdtempSync(join(tmpdir(), 'kl-sec-config-'));
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NODES = { REDIS_NODES: '127.0.0.1:7000' };

/** [variable named in the issue, case, env on top of a valid base]. */
type Row = readonly [variable: string, what: string, env: Record<string, string>];

const SHARED_ROWS: Row[] = [
  ['REDIS_NODES', 'host without port', { REDIS_NODES: 'cache.example.com' }],
  ['REDIS_NODES', 'port out of range', { REDIS_NODES: '127.0.0.1:70000' }],
  ['REDIS_NODES', 'port not a number', { REDIS_NODES: '127.0.0.1:http' }],
  ['REDIS_NODES', 'one bad entry among good ones', { REDIS_NODES: '10.0.0.1:6379,10.0.0.2' }],
  ['REDIS_TLS', 'not a boolean', { REDIS_TLS: 'yes' }],
  [
    'REDIS_TLS_CA_FILE',
    'file that does not exist',
    { REDIS_TLS: 'true', REDIS_TLS_CA_FILE: join(dir, 'missing.pem') },
  ],
  ['REDIS_TLS_CA_FILE', 'CA file without TLS', { REDIS_TLS: 'false', REDIS_TLS_CA_FILE: caFile }],
  ['REDIS_USERNAME', 'user without password', { REDIS_USERNAME: 'kl-worker' }],
  ['LEADER_NAME', 'closing brace (would break the hash tag)', { LEADER_NAME: 'a}b' }],
  ['LEADER_NAME', 'glob character', { LEADER_NAME: 'orders*' }],
  ['LEADER_NAME', 'too long', { LEADER_NAME: 'x'.repeat(65) }],
  ['LEADER_NAME', 'whitespace', { LEADER_NAME: 'two words' }],
  ['LOG_LEVEL', 'unknown level', { LOG_LEVEL: 'verbose' }],
  ['METRICS_NAMESPACE', 'forbidden characters', { METRICS_NAMESPACE: 'Keyspace Leader!' }],
];

const WORKER_ROWS: Row[] = [
  ...SHARED_ROWS,
  ['WORKER_ID', 'too long', { WORKER_ID: 'w'.repeat(513) }],
  ['LEASE_TTL_MS', 'negative', { LEASE_TTL_MS: '-3000' }],
  ['LEASE_TTL_MS', 'not a number', { LEASE_TTL_MS: '3s' }],
  ['LEASE_TTL_MS', 'fraction', { LEASE_TTL_MS: '3000.5' }],
  ['LEASE_TTL_MS', 'zero', { LEASE_TTL_MS: '0' }],
  ['LEASE_TTL_MS', 'above one hour', { LEASE_TTL_MS: '3600001' }],
  ['LEASE_RENEW_INTERVAL_MS', 'renew interval >= TTL', { LEASE_RENEW_INTERVAL_MS: '3000' }],
  ['LEASE_RENEW_INTERVAL_MS', 'negative', { LEASE_RENEW_INTERVAL_MS: '-1' }],
  ['LEASE_RENEW_DEADLINE_MS', 'deadline >= TTL', { LEASE_RENEW_DEADLINE_MS: '3000' }],
  ['LEASE_RENEW_DEADLINE_MS', 'not a number', { LEASE_RENEW_DEADLINE_MS: 'soon' }],
  ['LEASE_RETRY_MS', 'retry >= TTL', { LEASE_RETRY_MS: '3000' }],
  ['LEASE_RETRY_MS', 'negative', { LEASE_RETRY_MS: '-250' }],
  ['HANDLER', 'unknown handler module', { HANDLER: join(dir, 'no-such-handler.mjs') }],
  ['HANDLER_CONCURRENCY', 'zero', { HANDLER_CONCURRENCY: '0' }],
  ['HANDLER_CONCURRENCY', 'above the bound', { HANDLER_CONCURRENCY: '10001' }],
  ['HANDLER_CONCURRENCY', 'not a number', { HANDLER_CONCURRENCY: 'many' }],
  ['HANDLER_QUEUE_CAPACITY', 'zero', { HANDLER_QUEUE_CAPACITY: '0' }],
  ['HANDLER_QUEUE_CAPACITY', 'above the bound', { HANDLER_QUEUE_CAPACITY: '1000001' }],
  ['HANDLER_TIMEOUT_MS', 'zero', { HANDLER_TIMEOUT_MS: '0' }],
  ['HANDLER_TIMEOUT_MS', 'negative', { HANDLER_TIMEOUT_MS: '-5' }],
  ['KEY_PATTERN', 'too long', { KEY_PATTERN: '*'.repeat(1025) }],
  ['HEALTH_PORT', 'out of range', { HEALTH_PORT: '65536' }],
  ['HEALTH_PORT', 'negative', { HEALTH_PORT: '-1' }],
  ['REPLAY_WINDOW_MS', 'negative', { REPLAY_WINDOW_MS: '-1' }],
  ['REPLAY_WINDOW_MS', 'shorter than twice the hand-over gap', { REPLAY_WINDOW_MS: '1000' }],
  ['REPLAY_MAX_EVENTS', 'below the bound', { REPLAY_MAX_EVENTS: '5' }],
  ['CAPTURE_VALUES', 'not a boolean', { CAPTURE_VALUES: 'on' }],
  ['EXPIRY_READ_AHEAD_MS', 'zero', { EXPIRY_READ_AHEAD_MS: '0' }],
  ['EXPIRY_READ_AHEAD_MS', 'not below the follower backstop delay', { EXPIRY_READ_AHEAD_MS: '500' }],
  ['VALUE_MAX_BYTES', 'zero', { VALUE_MAX_BYTES: '0' }],
  ['VALUE_MAX_BYTES', 'above the bound', { VALUE_MAX_BYTES: '1048577' }],
  ['VALUE_MAX_BYTES', 'over the budget', { VALUE_MAX_BYTES: '65536', VALUE_BUDGET_BYTES: '65535' }],
  ['VALUE_BUDGET_BYTES', 'below the bound', { VALUE_BUDGET_BYTES: '1023' }],
  ['VALUE_BUDGET_BYTES', 'not a number', { VALUE_BUDGET_BYTES: '64MiB' }],
];

const REPORT_ROWS: Row[] = [
  ...SHARED_ROWS,
  ['NOTIFY_MODE', 'unknown mode', { NOTIFY_MODE: 'manual' }],
  ['REPLICATION_GROUP_ID', 'parameter-group without a group id', { NOTIFY_MODE: 'parameter-group' }],
  ['ECS_SERVICE', 'ECS cluster without service', { ECS_CLUSTER: 'workers' }],
  ['ECS_SERVICE', 'ECS service without cluster', { ECS_SERVICE: 'workers' }],
  ['CANARY_TIMEOUT_MS', 'below 50 ms', { CANARY_TIMEOUT_MS: '10' }],
  ['CANARY_TIMEOUT_MS', 'negative', { CANARY_TIMEOUT_MS: '-100' }],
];

describe('parseWorkerConfig refuses every bad variable', () => {
  it.each(WORKER_ROWS)('%s: %s', (variable, _what, env) => {
    const issues = issuesOf(() => parseWorkerConfig({ ...NODES, ...env }));
    expect(issues.map((i) => i.variable)).toContain(variable);
    for (const issue of issues) expect(issue.message).toContain(issue.variable);
  });

  it('refuses a missing REDIS_NODES when no local cluster file is given', () => {
    expect(issuesOf(() => parseWorkerConfig({})).map((i) => i.variable)).toEqual(['REDIS_NODES']);
  });

  it('lists every problem at once when all variables are wrong', () => {
    const issues = issuesOf(() =>
      parseWorkerConfig({
        REDIS_NODES: '127.0.0.1',
        REDIS_TLS: 'yes',
        REDIS_TLS_CA_FILE: join(dir, 'missing.pem'),
        REDIS_USERNAME: 'kl-worker',
        LEADER_NAME: 'a}b',
        LOG_LEVEL: 'verbose',
        METRICS_NAMESPACE: 'Keyspace Leader!',
        WORKER_ID: 'w'.repeat(513),
        LEASE_TTL_MS: '-3000',
        LEASE_RENEW_INTERVAL_MS: 'x',
        LEASE_RENEW_DEADLINE_MS: '0',
        LEASE_RETRY_MS: '-1',
        HANDLER: join(dir, 'no-such-handler.mjs'),
        HANDLER_CONCURRENCY: '0',
        HANDLER_TIMEOUT_MS: '-5',
        KEY_PATTERN: '*'.repeat(1025),
        HEALTH_PORT: '65536',
        REPLAY_WINDOW_MS: '-1',
        REPLAY_MAX_EVENTS: '5',
        CAPTURE_VALUES: 'on',
        EXPIRY_READ_AHEAD_MS: '500',
        VALUE_MAX_BYTES: '0',
        VALUE_BUDGET_BYTES: '1023',
      }),
    );
    expect(new Set(issues.map((i) => i.variable))).toEqual(
      new Set([
        'REDIS_NODES',
        'REDIS_TLS',
        'REDIS_TLS_CA_FILE',
        'REDIS_USERNAME',
        'LEADER_NAME',
        'LOG_LEVEL',
        'METRICS_NAMESPACE',
        'WORKER_ID',
        'LEASE_TTL_MS',
        'LEASE_RENEW_INTERVAL_MS',
        'LEASE_RENEW_DEADLINE_MS',
        'LEASE_RETRY_MS',
        'HANDLER',
        'HANDLER_CONCURRENCY',
        'HANDLER_TIMEOUT_MS',
        'KEY_PATTERN',
        'HEALTH_PORT',
        'REPLAY_WINDOW_MS',
        'REPLAY_MAX_EVENTS',
        'CAPTURE_VALUES',
        'EXPIRY_READ_AHEAD_MS',
        'VALUE_MAX_BYTES',
        'VALUE_BUDGET_BYTES',
      ]),
    );
  });
});

describe('parseReportConfig refuses every bad variable', () => {
  it.each(REPORT_ROWS)('%s: %s', (variable, _what, env) => {
    const issues = issuesOf(() => parseReportConfig({ ...NODES, ...env }));
    expect(issues.map((i) => i.variable)).toContain(variable);
  });

  it('lists every problem at once', () => {
    const issues = issuesOf(() =>
      parseReportConfig({
        REDIS_NODES: 'x',
        LOG_LEVEL: 'loud',
        NOTIFY_MODE: 'parameter-group',
        ECS_CLUSTER: 'c',
        CANARY_TIMEOUT_MS: '1',
      }),
    );
    expect(new Set(issues.map((i) => i.variable))).toEqual(
      new Set(['REDIS_NODES', 'LOG_LEVEL', 'REPLICATION_GROUP_ID', 'ECS_SERVICE', 'CANARY_TIMEOUT_MS']),
    );
  });
});

describe('REDIS_TLS_CA_FILE must be a readable file, not just a readable path', () => {
  // A directory passes an access(R_OK) check; the worker then crashed at startup with EISDIR (exit 1)
  // instead of exiting 78 before connecting. See docs/security.md, "Configuration".
  it('refuses a directory', () => {
    const issues = issuesOf(() => parseWorkerConfig({ ...NODES, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: dir }));
    expect(issues.map((i) => i.variable)).toContain('REDIS_TLS_CA_FILE');
  });
});
