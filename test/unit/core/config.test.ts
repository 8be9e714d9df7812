import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EXPIRY_READ_AHEAD_MAX_MS,
  leaseTimingIssues,
  PROCESSED_LOG_MAX_SAMPLE_EVERY,
  parseNodeList,
  parseReportConfig,
  parseWorkerConfig,
  VALUE_BUDGET_BYTES_LIMIT,
  VALUE_MAX_BYTES_LIMIT,
} from '../../../core/config.ts';
import { EXPIRY_TOUCHER_DEFAULTS } from '../../../core/defaults.ts';
import { ConfigError } from '../../../core/errors.ts';

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('parseWorkerConfig', () => {
  it('applies the documented defaults (README.md, "Configuration")', () => {
    const config = parseWorkerConfig({ REDIS_NODES: '127.0.0.1:7000' });
    expect(config).toMatchObject({
      redis: { nodes: [{ host: '127.0.0.1', port: 7000 }], tls: false },
      leaderName: 'default',
      logLevel: 'info',
      metricsNamespace: 'KeyspaceLeader',
      leaseTtlMs: 3000,
      leaseRenewIntervalMs: 1000,
      leaseRenewDeadlineMs: 2000,
      leaseRetryMs: 250,
      handler: { kind: 'log' },
      keyPattern: '*',
      processedLog: { mode: 'all' },
    });
  });

  it('reports every problem at once, each naming its variable', () => {
    const issues = issuesOf(() =>
      parseWorkerConfig({
        REDIS_NODES: 'nohost',
        LEASE_TTL_MS: 'abc',
        LEASE_RETRY_MS: '-5',
        LOG_LEVEL: 'loud',
        LEADER_NAME: 'a{b}',
        REDIS_TLS: 'maybe',
      }),
    );
    const variables = issues.map((i) => i.variable).sort();
    expect(variables).toEqual(
      ['LEADER_NAME', 'LEASE_RETRY_MS', 'LEASE_TTL_MS', 'LOG_LEVEL', 'REDIS_NODES', 'REDIS_TLS'].sort(),
    );
  });

  it('still checks the lease rules and the handler when another variable is unreadable', () => {
    const issues = issuesOf(() =>
      parseWorkerConfig({
        REDIS_NODES: '127.0.0.1:7000',
        LOG_LEVEL: 'loud',
        LEASE_RENEW_INTERVAL_MS: '5000',
        HANDLER: '/no/such/handler.mjs',
      }),
    );
    expect(issues.map((i) => i.variable).sort()).toEqual(['HANDLER', 'LEASE_RENEW_INTERVAL_MS', 'LOG_LEVEL']);
  });

  it('reports node list problems and lease rules together', () => {
    const issues = issuesOf(() =>
      parseWorkerConfig({
        REDIS_NODES: 'a:1,b',
        LEASE_RENEW_INTERVAL_MS: '2500',
        HANDLER: '/no/such/module.js',
      }),
    );
    expect(issues.map((i) => i.variable).sort()).toEqual([
      'HANDLER',
      'LEASE_RENEW_INTERVAL_MS',
      'REDIS_NODES',
    ]);
  });

  it('requires REDIS_NODES unless a local cluster file is given', () => {
    expect(issuesOf(() => parseWorkerConfig({})).map((i) => i.variable)).toEqual(['REDIS_NODES']);
    const config = parseWorkerConfig(
      {},
      { localCluster: { nodes: [{ host: '127.0.0.1', port: 7001 }], tls: false, caFile: undefined, pid: 1 } },
    );
    expect(config.redis.nodes).toEqual([{ host: '127.0.0.1', port: 7001 }]);
  });

  it('checks combinations: CA without TLS, unreadable CA, username without password', () => {
    const issues = issuesOf(() =>
      parseWorkerConfig({
        REDIS_NODES: 'h:1',
        REDIS_TLS_CA_FILE: '/no/such/ca.pem',
        REDIS_USERNAME: 'worker',
      }),
    );
    expect(issues.map((i) => i.variable).sort()).toEqual([
      'REDIS_TLS_CA_FILE',
      'REDIS_TLS_CA_FILE',
      'REDIS_USERNAME',
    ]);
  });

  it('accepts a readable CA file with TLS and a module handler path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kl-config-'));
    writeFileSync(join(dir, 'ca.pem'), 'x');
    writeFileSync(join(dir, 'h.mjs'), 'export default () => {}');
    const config = parseWorkerConfig(
      { REDIS_NODES: '[::1]:6379', REDIS_TLS: 'true', REDIS_TLS_CA_FILE: 'ca.pem', HANDLER: './h.mjs' },
      { cwd: dir },
    );
    expect(config.redis).toMatchObject({
      tls: true,
      tlsCaFile: join(dir, 'ca.pem'),
      nodes: [{ host: '::1', port: 6379 }],
    });
    expect(config.handler).toEqual({ kind: 'module', path: join(dir, 'h.mjs') });
  });
});

describe('PROCESSED_LOG', () => {
  const parse = (value: string | undefined) =>
    parseWorkerConfig({ REDIS_NODES: '127.0.0.1:7000', PROCESSED_LOG: value }).processedLog;

  it('defaults to all (unset or empty)', () => {
    expect(parse(undefined)).toEqual({ mode: 'all' });
    expect(parse('')).toEqual({ mode: 'all' });
  });

  it('parses all, failures and sample:N', () => {
    expect(parse('all')).toEqual({ mode: 'all' });
    expect(parse('failures')).toEqual({ mode: 'failures' });
    expect(parse('sample:1')).toEqual({ mode: 'sample', everyN: 1 });
    expect(parse('sample:100')).toEqual({ mode: 'sample', everyN: 100 });
    expect(parse(`sample:${PROCESSED_LOG_MAX_SAMPLE_EVERY}`)).toEqual({
      mode: 'sample',
      everyN: PROCESSED_LOG_MAX_SAMPLE_EVERY,
    });
  });

  it.each([
    'none',
    'ALL',
    'sample',
    'sample:',
    'sample:0',
    'sample:-1',
    'sample:1.5',
    'sample:10x',
    ' all',
    `sample:${PROCESSED_LOG_MAX_SAMPLE_EVERY + 1}`,
    'sample:99999999',
  ])('rejects %j with one issue naming PROCESSED_LOG', (value) => {
    const issues = issuesOf(() => parse(value));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.variable).toBe('PROCESSED_LOG');
    expect(issues[0]?.message).toMatch(/^PROCESSED_LOG must be all, failures or sample:N/);
  });

  it('is reported together with the other problems', () => {
    const issues = issuesOf(() =>
      parseWorkerConfig({ REDIS_NODES: '127.0.0.1:7000', PROCESSED_LOG: 'sample:0', LOG_LEVEL: 'loud' }),
    );
    expect(issues.map((i) => i.variable).sort()).toEqual(['LOG_LEVEL', 'PROCESSED_LOG']);
  });
});

describe('value capture', () => {
  const parse = (env: Record<string, string>) => parseWorkerConfig({ REDIS_NODES: '127.0.0.1:7000', ...env });

  it('defaults: capture on, read 20 ms ahead, values up to 64 KiB, a budget of 64 MiB', () => {
    expect(parse({})).toMatchObject({
      captureValues: true,
      expiryReadAheadMs: 20,
      valueMaxBytes: 65_536,
      valueBudgetBytes: 64 * 1024 * 1024,
    });
    expect(
      parse({ CAPTURE_VALUES: '', EXPIRY_READ_AHEAD_MS: '', VALUE_MAX_BYTES: '', VALUE_BUDGET_BYTES: '' }),
    ).toMatchObject({ captureValues: true, expiryReadAheadMs: 20 });
  });

  it('parses the four variables', () => {
    expect(
      parse({
        CAPTURE_VALUES: 'false',
        EXPIRY_READ_AHEAD_MS: '50',
        VALUE_MAX_BYTES: '1024',
        VALUE_BUDGET_BYTES: '1048576',
      }),
    ).toMatchObject({
      captureValues: false,
      expiryReadAheadMs: 50,
      valueMaxBytes: 1024,
      valueBudgetBytes: 1_048_576,
    });
    expect(parse({ CAPTURE_VALUES: '0' }).captureValues).toBe(false);
    expect(parse({ CAPTURE_VALUES: '1' }).captureValues).toBe(true);
  });

  it('PRECISE_EXPIRY=false turns capture off, without an error, whatever CAPTURE_VALUES says', () => {
    expect(parse({ PRECISE_EXPIRY: 'false' }).captureValues).toBe(false);
    expect(parse({ PRECISE_EXPIRY: 'false', CAPTURE_VALUES: 'true' })).toMatchObject({
      preciseExpiry: false,
      captureValues: false,
    });
  });

  it('EXPIRY_READ_AHEAD_MS stays below the follower backstop delay', () => {
    expect(EXPIRY_READ_AHEAD_MAX_MS).toBe(EXPIRY_TOUCHER_DEFAULTS.followerDelayMs - 1);
    expect(parse({ EXPIRY_READ_AHEAD_MS: String(EXPIRY_READ_AHEAD_MAX_MS) }).expiryReadAheadMs).toBe(
      EXPIRY_READ_AHEAD_MAX_MS,
    );
    const issues = issuesOf(() =>
      parse({ EXPIRY_READ_AHEAD_MS: String(EXPIRY_TOUCHER_DEFAULTS.followerDelayMs) }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]?.variable).toBe('EXPIRY_READ_AHEAD_MS');
    expect(issues[0]?.message).toMatch(/follower's backstop delay \(500 ms\)/);
  });

  it.each([
    ['CAPTURE_VALUES', 'yes'],
    ['EXPIRY_READ_AHEAD_MS', '0'],
    ['EXPIRY_READ_AHEAD_MS', '1.5'],
    ['EXPIRY_READ_AHEAD_MS', '-1'],
    ['VALUE_MAX_BYTES', '0'],
    ['VALUE_MAX_BYTES', String(VALUE_MAX_BYTES_LIMIT + 1)],
    ['VALUE_MAX_BYTES', '64k'],
    ['VALUE_BUDGET_BYTES', '1023'],
    ['VALUE_BUDGET_BYTES', String(VALUE_BUDGET_BYTES_LIMIT + 1)],
  ])('rejects %s=%j with one issue naming it', (variable, value) => {
    const issues = issuesOf(() => parse({ [variable]: value }));
    expect(issues.map((i) => i.variable)).toEqual([variable]);
  });

  it('VALUE_MAX_BYTES must fit in VALUE_BUDGET_BYTES', () => {
    expect(parse({ VALUE_MAX_BYTES: '4096', VALUE_BUDGET_BYTES: '4096' }).valueMaxBytes).toBe(4096);
    const issues = issuesOf(() => parse({ VALUE_MAX_BYTES: '4097', VALUE_BUDGET_BYTES: '4096' }));
    expect(issues.map((i) => i.variable)).toEqual(['VALUE_MAX_BYTES']);
    expect(issues[0]?.message).toBe(
      'VALUE_MAX_BYTES (4097) must be <= VALUE_BUDGET_BYTES (4096): a value the size check lets through must fit in the budget of held values',
    );
    // The default VALUE_MAX_BYTES against a small budget is caught too.
    expect(issuesOf(() => parse({ VALUE_BUDGET_BYTES: '4096' })).map((i) => i.variable)).toEqual([
      'VALUE_MAX_BYTES',
    ]);
  });

  it('is checked while capture is off, and reported with every other problem', () => {
    const issues = issuesOf(() =>
      parse({
        CAPTURE_VALUES: 'false',
        VALUE_MAX_BYTES: '9000',
        VALUE_BUDGET_BYTES: '8192',
        EXPIRY_READ_AHEAD_MS: 'soon',
        LOG_LEVEL: 'loud',
      }),
    );
    expect(issues.map((i) => i.variable).sort()).toEqual([
      'EXPIRY_READ_AHEAD_MS',
      'LOG_LEVEL',
      'VALUE_MAX_BYTES',
    ]);
  });

  it('the Lambda ignores them (its configuration has none)', () => {
    expect(parseReportConfig({ REDIS_NODES: 'h:1', VALUE_MAX_BYTES: 'nonsense' })).not.toHaveProperty(
      'valueMaxBytes',
    );
  });
});

describe('lease timing rules', () => {
  it('accepts the defaults and rejects each broken rule', () => {
    expect(
      leaseTimingIssues({
        leaseTtlMs: 3000,
        leaseRenewDeadlineMs: 2000,
        leaseRenewIntervalMs: 1000,
        leaseRetryMs: 250,
      }),
    ).toEqual([]);
    const broken = leaseTimingIssues({
      leaseTtlMs: 1000,
      leaseRenewDeadlineMs: 1000,
      leaseRenewIntervalMs: 1000,
      leaseRetryMs: 1000,
    });
    expect(broken.map((i) => i.variable)).toEqual([
      'LEASE_RENEW_DEADLINE_MS',
      'LEASE_RENEW_INTERVAL_MS',
      'LEASE_RETRY_MS',
    ]);
  });
});

describe('parseNodeList', () => {
  it('parses hosts, IPv6 and reports bad entries', () => {
    expect(parseNodeList('a:1, b.example.com:6379,[::1]:7000')).toEqual({
      nodes: [
        { host: 'a', port: 1 },
        { host: 'b.example.com', port: 6379 },
        { host: '::1', port: 7000 },
      ],
      problems: [],
    });
    expect(parseNodeList('a:0,b:70000,c').problems).toHaveLength(3);
  });
});

describe('parseReportConfig', () => {
  it('defaults to auto and checks mode combinations', () => {
    expect(parseReportConfig({ REDIS_NODES: 'h:1' })).toMatchObject({
      notifyMode: 'auto',
      canaryTimeoutMs: 3000,
    });
    const issues = issuesOf(() =>
      parseReportConfig({ REDIS_NODES: 'h:1', NOTIFY_MODE: 'parameter-group', ECS_CLUSTER: 'c' }),
    );
    expect(issues.map((i) => i.variable).sort()).toEqual(['ECS_SERVICE', 'REPLICATION_GROUP_ID']);
  });
});
