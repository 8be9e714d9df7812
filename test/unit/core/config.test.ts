import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  leaseTimingIssues,
  PROCESSED_LOG_MAX_SAMPLE_EVERY,
  parseNodeList,
  parseReportConfig,
  parseWorkerConfig,
} from '../../../core/config.ts';
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
