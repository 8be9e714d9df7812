import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReportConfig } from '../../../../core/config.ts';
import { ConfigError } from '../../../../core/errors.ts';
import { ClusterUnreachableError } from '../../../../lambdas/notify-check/errors.ts';
import { createHandler } from '../../../../lambdas/notify-check/handler.ts';
import { FakeCluster } from './fake-cluster.ts';
import { emittedMetrics } from './helpers.ts';

const secrets = mockClient(SecretsManagerClient);
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kl-redis-auth-AbCdEf';
const TOKEN = 'an-auth-token-of-32-characters-xx';

const context = {
  functionName: 'notify-check',
  awsRequestId: 'req-1',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:notify-check',
  memoryLimitInMB: '256',
  functionVersion: '$LATEST',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

let output: string[];
beforeEach(() => {
  output = [];
  const record = (chunk: string | Uint8Array) => {
    output.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(record);
  vi.spyOn(process.stderr, 'write').mockImplementation(record);
});
afterEach(() => {
  vi.restoreAllMocks();
  secrets.reset();
});

function setup(cluster: FakeCluster, env: Record<string, string>) {
  const configs: ReportConfig[] = [];
  const emf: string[] = [];
  const handler = createHandler({
    env: {
      REDIS_NODES: cluster.seeds.map((s) => `${s.host}:${s.port}`).join(','),
      CANARY_TIMEOUT_MS: '300',
      ...env,
    },
    nodes: (config) => {
      configs.push(config);
      return cluster;
    },
    secretsManager: new SecretsManagerClient({ region: 'eu-west-1' }),
    writeMetrics: (line) => emf.push(line),
    powertools: new PowertoolsLogger({ serviceName: 'keyspace-leader-notify-check', logLevel: 'DEBUG' }),
  });
  return { handler, configs, emf };
}

describe('notify-check handler', () => {
  it('reads the password from Secrets Manager once, runs the check and returns the report', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({ SecretString: TOKEN });
    const cluster = FakeCluster.build();
    const { handler, configs, emf } = setup(cluster, { REDIS_PASSWORD_SECRET_ARN: SECRET_ARN });

    const first = await handler({ source: 'aws.scheduler' }, context);
    const second = await handler({}, context);

    expect(first.metrics).toMatchObject({ PrimariesTotal: 3, PrimariesVerified: 3, NodesDrifted: 6 });
    expect(second.metrics).toMatchObject({ NodesDrifted: 0, NodesConfigured: 6 });
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(configs.map((c) => c.redis.password)).toEqual([TOKEN, TOKEN]);
    // One EMF document per invocation, with the values of that invocation (no stale gauges).
    expect(emf).toHaveLength(2);
    expect(emittedMetrics([emf[1] as string]).NodesDrifted).toBe(0);
    // Logs went through Powertools (its fields) with our stable `event` field, and never the token.
    const logs = output.join('');
    expect(logs).toContain('"event":"report.completed"');
    expect(logs).toContain('"service":"keyspace-leader-notify-check"');
    expect(logs).toContain('"function_request_id":"req-1"');
    expect(logs).not.toContain(TOKEN);
    expect(JSON.stringify(first)).not.toContain(TOKEN);
  });

  it('takes the password field of a JSON secret', async () => {
    secrets
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ username: 'kl', password: TOKEN }) });
    const cluster = FakeCluster.build();
    const { handler, configs } = setup(cluster, { REDIS_PASSWORD_SECRET_ARN: SECRET_ARN });
    await handler({}, context);
    expect(configs[0]?.redis.password).toBe(TOKEN);
  });

  it('throws ClusterUnreachableError when no node answers, and reads the secret again next time', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: TOKEN });
    const cluster = FakeCluster.build();
    for (const node of cluster.nodes) node.failure = 'down';
    const { handler, emf } = setup(cluster, { REDIS_PASSWORD_SECRET_ARN: SECRET_ARN });
    await expect(handler({}, context)).rejects.toBeInstanceOf(ClusterUnreachableError);
    for (const node of cluster.nodes) node.failure = undefined;
    await handler({}, context);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    expect(output.join('')).toContain('"event":"report.failed"');
    expect(emf).toHaveLength(1);
  });

  it('invalid configuration: every invocation fails with ConfigError listing the problems', async () => {
    const handler = createHandler({
      env: { NOTIFY_MODE: 'sometimes', REDIS_PASSWORD_SECRET_ARN: 'not a secret id!' },
      powertools: new PowertoolsLogger({ serviceName: 'keyspace-leader-notify-check' }),
    });
    const error = await handler({}, context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).issues.map((i) => i.variable);
    expect(variables).toEqual(expect.arrayContaining(['NOTIFY_MODE', 'REDIS_PASSWORD_SECRET_ARN']));
    expect(output.join('')).toContain('"event":"config.invalid"');
    await expect(handler({}, context)).rejects.toBeInstanceOf(ConfigError);
  });

  it('exports the Lambda entry point `handler`', async () => {
    const module = await import('../../../../lambdas/notify-check/handler.ts');
    expect(typeof module.handler).toBe('function');
  });
});
