/**
 * The default deployment (no context): one synthesis for the whole file, targeted assertions per
 * requirement of issue 6 (no whole-template snapshot).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Token, Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_METRICS_NAMESPACE,
  LEADER_NAME_DIMENSION,
  METRIC_BREAKDOWNS,
  METRIC_NAMES,
  VALUE_MISSING_REASONS,
} from '../../cdk/metric-names.ts';
import { referencedMetrics } from '../../cdk/referenced-metrics.ts';
import { type CfnProps, resourcesOfType, type Synthesized, synthesize } from './synth.ts';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

const ref = (logicalId: string) => ({ Ref: logicalId });
const getAtt = (logicalId: string, attr: string) => ({ 'Fn::GetAtt': [logicalId, attr] });
const only = (json: Synthesized['json'], type: string): [string, CfnProps] => {
  const found = resourcesOfType(json, type);
  expect(found, type).toHaveLength(1);
  return found[0] as [string, CfnProps];
};

describe('app and synthesis', () => {
  it('is environment-agnostic by default, so synthesis performs no context lookups', () => {
    expect(Token.isUnresolved(s.stack.account)).toBe(true);
    expect(Token.isUnresolved(s.stack.region)).toBe(true);
    expect(s.assembly.manifest.missing ?? []).toEqual([]);
  });

  it('runs the app with tsx and pins the CDK CLI as a dev dependency', () => {
    const cdkJson = JSON.parse(readFileSync(path.join(__dirname, '../../cdk.json'), 'utf8'));
    expect(cdkJson.app).toBe('npx tsx cdk/app.ts');
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));
    expect(pkg.devDependencies['aws-cdk']).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('names the stack KeyspaceLeader and emits the four required outputs', () => {
    expect(s.stack.stackName).toBe('KeyspaceLeader');
    const [rgId] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    const [secretId] = only(s.json, 'AWS::SecretsManager::Secret');
    const [serviceId] = only(s.json, 'AWS::ECS::Service');
    s.template.hasOutput('ConfigurationEndpoint', {
      Value: {
        'Fn::Join': [
          '',
          [getAtt(rgId, 'ConfigurationEndPoint.Address'), ':', getAtt(rgId, 'ConfigurationEndPoint.Port')],
        ],
      },
    });
    s.template.hasOutput('AuthTokenSecretArn', { Value: ref(secretId) });
    s.template.hasOutput('WorkerServiceName', { Value: getAtt(serviceId, 'Name') });
    s.template.hasOutput('DashboardUrl', {
      Value: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('#dashboards/dashboard/$')])] },
    });
  });
});

describe('teardown', () => {
  it('retains the three log groups and lets the alarm-topic key and the secret go with the stack', () => {
    const logGroups = resourcesOfType(s.json, 'AWS::Logs::LogGroup').map(
      ([id]) => s.json.Resources[id] as CfnProps,
    );
    expect(logGroups).toHaveLength(3);
    for (const logGroup of logGroups) expect(logGroup.DeletionPolicy).toBe('Retain');
    s.template.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ PendingWindowInDays: 7 }),
    });
    s.template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Delete' });
  });
});

describe('network', () => {
  it('creates one VPC with two private isolated subnets and no internet path (endpoints egress)', () => {
    s.template.resourceCountIs('AWS::EC2::VPC', 1);
    s.template.resourceCountIs('AWS::EC2::Subnet', 2);
    s.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    s.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    for (const [, subnet] of resourcesOfType(s.json, 'AWS::EC2::Subnet')) {
      expect(subnet.MapPublicIpOnLaunch).toBe(false);
    }
  });

  it('adds the interface endpoints the tasks and the Lambda call, plus the S3 gateway endpoint', () => {
    const services = resourcesOfType(s.json, 'AWS::EC2::VPCEndpoint').map(([, p]) => ({
      type: p.VpcEndpointType,
      service: (p.ServiceName['Fn::Join'][1] as unknown[]).at(-1),
    }));
    expect(services).toEqual(
      expect.arrayContaining([
        { type: 'Gateway', service: '.s3' },
        ...['.ecr.api', '.ecr.dkr', '.logs', '.secretsmanager', '.ecs', '.elasticache'].map((service) => ({
          type: 'Interface',
          service,
        })),
      ]),
    );
    expect(services).toHaveLength(7);
  });

  it('lets only the worker and Lambda security groups reach the endpoints, on 443', () => {
    const endpointSg = s.stack.network.endpointSecurityGroup;
    expect(endpointSg).toBeDefined();
    const endpointSgId = s.stack.getLogicalId(endpointSg?.node.defaultChild as never);
    const ingress = resourcesOfType(s.json, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, p]) => p.GroupId['Fn::GetAtt']?.[0] === endpointSgId,
    );
    expect(
      ingress.map(([, p]) => [p.FromPort, p.ToPort, p.SourceSecurityGroupId['Fn::GetAtt'][0]]).sort(),
    ).toEqual(
      [
        [443, 443, 'NotifyCheckSecurityGroup7637EADE'],
        [443, 443, 'WorkerSecurityGroup5529CF0B'],
      ].sort(),
    );
  });

  it('records rejected flows of the new VPC', () => {
    s.template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'REJECT' });
  });
});

describe('ElastiCache', () => {
  it('is a cluster-mode valkey replication group: 3 shards x 1 replica, failover, Multi-AZ, encrypted, port 6380', () => {
    s.template.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      Engine: 'valkey',
      EngineVersion: '8.0',
      ClusterMode: 'enabled',
      CacheNodeType: 'cache.t4g.small',
      NumNodeGroups: 3,
      ReplicasPerNodeGroup: 1,
      AutomaticFailoverEnabled: true,
      MultiAZEnabled: true,
      TransitEncryptionEnabled: true,
      AtRestEncryptionEnabled: true,
      Port: 6380,
      CacheParameterGroupName: ref(only(s.json, 'AWS::ElastiCache::ParameterGroup')[0]),
      CacheSubnetGroupName: ref(only(s.json, 'AWS::ElastiCache::SubnetGroup')[0]),
    });
  });

  it('takes a final snapshot instead of dropping the data on deletion or replacement', () => {
    s.template.hasResource('AWS::ElastiCache::ReplicationGroup', {
      DeletionPolicy: 'Snapshot',
      UpdateReplacePolicy: 'Snapshot',
    });
  });

  it('uses a custom parameter group: cluster-enabled, Egx notifications (precise expiry), partial coverage', () => {
    s.template.hasResourceProperties('AWS::ElastiCache::ParameterGroup', {
      CacheParameterGroupFamily: 'valkey8',
      Properties: {
        'cluster-enabled': 'yes',
        'notify-keyspace-events': 'Egx',
        'cluster-require-full-coverage': 'no',
      },
    });
  });

  it('places the subnet group in both private subnets', () => {
    const [, subnetGroup] = only(s.json, 'AWS::ElastiCache::SubnetGroup');
    expect(subnetGroup.SubnetIds).toHaveLength(2);
  });

  it('accepts connections only from the worker and Lambda security groups, on the cache port', () => {
    const [, rg] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    const cacheSgId = rg.SecurityGroupIds[0]['Fn::GetAtt'][0];
    const cacheSg = s.json.Resources[cacheSgId]?.Properties;
    expect(cacheSg.SecurityGroupIngress).toBeUndefined();
    const ingress = resourcesOfType(s.json, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, p]) => p.GroupId['Fn::GetAtt'][0] === cacheSgId,
    );
    expect(
      ingress
        .map(([, p]) => [p.IpProtocol, p.FromPort, p.ToPort, p.SourceSecurityGroupId['Fn::GetAtt'][0]])
        .sort(),
    ).toEqual(
      [
        ['tcp', 6380, 6380, 'NotifyCheckSecurityGroup7637EADE'],
        ['tcp', 6380, 6380, 'WorkerSecurityGroup5529CF0B'],
      ].sort(),
    );
    for (const [, p] of ingress) expect(p.CidrIp).toBeUndefined();
  });

  it('generates the AUTH token in Secrets Manager without characters ElastiCache forbids', () => {
    const [, secret] = only(s.json, 'AWS::SecretsManager::Secret');
    expect(secret.SecretString).toBeUndefined();
    const g = secret.GenerateSecretString;
    expect(g.PasswordLength).toBeGreaterThanOrEqual(16);
    expect(g.PasswordLength).toBeLessThanOrEqual(128);
    expect(g.IncludeSpace).toBe(false);
    // Punctuation (which contains / " @) is excluded entirely.
    expect(g.ExcludePunctuation).toBe(true);
  });
});

describe('no clear-text password in the template', () => {
  it('passes AuthToken only as a Secrets Manager dynamic reference', () => {
    const [secretId] = only(s.json, 'AWS::SecretsManager::Secret');
    const [, rg] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    expect(rg.AuthToken).toEqual({
      'Fn::Join': ['', ['{{resolve:secretsmanager:', ref(secretId), ':SecretString:::}}']],
    });
  });

  it('contains no AuthToken literal and no password-like variable with a literal value anywhere', () => {
    const literalSecrets: string[] = [];
    const visit = (node: unknown, where: string): void => {
      if (Array.isArray(node)) {
        for (const [i, child] of node.entries()) visit(child, `${where}[${i}]`);
      } else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (
            /^(AuthToken|Password|MasterUserPassword|SecretString)$/.test(key) &&
            typeof value === 'string'
          ) {
            literalSecrets.push(`${where}.${key}`);
          }
          visit(value, `${where}.${key}`);
        }
      }
    };
    visit(s.json, '$');
    expect(literalSecrets).toEqual([]);
    // Environment variables: the token travels as an ECS secret or as a secret ARN, never as a value.
    const text = JSON.stringify(s.json);
    expect(text).not.toMatch(/"Name":"REDIS_PASSWORD","Value"/);
    expect(text).not.toMatch(/"REDIS_PASSWORD":/);
  });
});

describe('worker service', () => {
  it('runs on Fargate ARM64 with 1 vCPU and 2 GiB by default, a read-only root filesystem, a /tmp volume and a 30 s stop timeout', () => {
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      Cpu: '1024',
      Memory: '2048',
      Volumes: [{ Name: 'tmp' }],
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'worker',
          Essential: true,
          ReadonlyRootFilesystem: true,
          StopTimeout: 30,
          MountPoints: [{ ContainerPath: '/tmp', SourceVolume: 'tmp', ReadOnly: false }],
          LinuxParameters: Match.objectLike({ InitProcessEnabled: true }),
        }),
      ],
    });
  });

  it('sets the worker environment of README.md, lease timings left to their defaults', () => {
    const [rgId] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    const [, taskDef] = only(s.json, 'AWS::ECS::TaskDefinition');
    const env = Object.fromEntries(
      (taskDef.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[]).map((e) => [
        e.Name,
        e.Value,
      ]),
    );
    expect(env).toEqual({
      REDIS_NODES: {
        'Fn::Join': [
          '',
          [getAtt(rgId, 'ConfigurationEndPoint.Address'), ':', getAtt(rgId, 'ConfigurationEndPoint.Port')],
        ],
      },
      REDIS_TLS: 'true',
      LEADER_NAME: 'default',
      METRICS_NAMESPACE: 'KeyspaceLeader',
      LOG_LEVEL: 'info',
      HANDLER: 'log',
      PROCESSED_LOG: 'all',
      PRECISE_EXPIRY: 'true',
      CAPTURE_VALUES: 'true',
      HEALTH_PORT: '8081',
    });
  });

  it('injects the AUTH token as the ECS secret REDIS_PASSWORD', () => {
    const [secretId] = only(s.json, 'AWS::SecretsManager::Secret');
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({ Secrets: [{ Name: 'REDIS_PASSWORD', ValueFrom: ref(secretId) }] }),
      ],
    });
  });

  it('health-checks the worker with the bundled healthcheck script', () => {
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          HealthCheck: Match.objectLike({ Command: ['CMD', 'node', 'dist/worker/healthcheck.mjs'] }),
        }),
      ],
    });
  });

  it('logs to its own log group with retention, without blocking the event loop', () => {
    const logGroupId = s.stack.getLogicalId(s.stack.workers.logGroup.node.defaultChild as never);
    s.template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    expect(s.json.Resources[logGroupId]?.Properties.RetentionInDays).toBe(30);
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          LogConfiguration: {
            LogDriver: 'awslogs',
            Options: Match.objectLike({ 'awslogs-group': ref(logGroupId), mode: 'non-blocking' }),
          },
        }),
      ],
    });
  });

  it('builds the image from the repository root with worker/Dockerfile for linux/arm64', () => {
    const assetManifest = JSON.parse(
      readFileSync(path.join(s.assembly.directory, `${s.stack.artifactId}.assets.json`), 'utf8'),
    ) as {
      dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }>;
    };
    const images = Object.values(assetManifest.dockerImages).map((image) => image.source);
    expect(images).toHaveLength(1);
    expect(images[0]?.dockerFile).toBe('worker/Dockerfile');
    expect(images[0]?.platform).toBe('linux/arm64');
    const staged = path.join(s.assembly.directory, images[0]?.directory ?? '');
    expect(readFileSync(path.join(staged, 'worker', 'Dockerfile'), 'utf8')).toMatch(/FROM node:24-slim/);
    expect(readFileSync(path.join(staged, 'package-lock.json'), 'utf8').length).toBeGreaterThan(0);
    // The .dockerignore allowlist keeps node_modules and unrelated folders out of the context.
    for (const excluded of ['node_modules', 'cdk', 'lambdas', 'test', 'docs']) {
      expect(existsSync(path.join(staged, excluded)), excluded).toBe(false);
    }
  });

  it('runs the desired count with no load balancer, 100/200 % health, circuit breaker with rollback', () => {
    s.template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 3,
      DeploymentConfiguration: {
        MinimumHealthyPercent: 100,
        MaximumPercent: 200,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      },
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    const [, service] = only(s.json, 'AWS::ECS::Service');
    expect(service.LoadBalancers ?? []).toEqual([]);
    s.template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
  });

  it('enables Container Insights with enhanced observability', () => {
    s.template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enhanced' }],
    });
  });
});

describe('notify-check Lambda', () => {
  it('runs Node 22+ on ARM64 in the VPC with the handler export', () => {
    const [, fn] =
      resourcesOfType(s.json, 'AWS::Lambda::Function').find(([id]) => id.startsWith('NotifyCheck')) ?? [];
    expect(fn).toBeDefined();
    expect(Number(/^nodejs(\d+)\.x$/.exec(fn.Runtime)?.[1])).toBeGreaterThanOrEqual(22);
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.Handler).toBe('index.handler');
    expect(fn.VpcConfig.SubnetIds).toHaveLength(2);
  });

  it('gets the shared environment plus REDIS_PASSWORD_SECRET_ARN', () => {
    const [rgId] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    const [secretId] = only(s.json, 'AWS::SecretsManager::Secret');
    const [clusterId] = only(s.json, 'AWS::ECS::Cluster');
    const [serviceId] = only(s.json, 'AWS::ECS::Service');
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          NOTIFY_MODE: 'auto',
          PRECISE_EXPIRY: 'true',
          REPLICATION_GROUP_ID: ref(rgId),
          ECS_CLUSTER: ref(clusterId),
          ECS_SERVICE: getAtt(serviceId, 'Name'),
          REDIS_NODES: Match.anyValue(),
          REDIS_TLS: 'true',
          LEADER_NAME: 'default',
          METRICS_NAMESPACE: 'KeyspaceLeader',
          REDIS_PASSWORD_SECRET_ARN: ref(secretId),
        }),
      },
    });
  });

  it('has a least-privilege role: no managed policies, scoped ECS, ElastiCache and secret access', () => {
    const [rgId] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    const [pgId] = only(s.json, 'AWS::ElastiCache::ParameterGroup');
    const [secretId] = only(s.json, 'AWS::SecretsManager::Secret');
    const [clusterId] = only(s.json, 'AWS::ECS::Cluster');
    const roleId = s.stack.getLogicalId(s.stack.notifyCheck.role.node.defaultChild as never);
    expect(s.json.Resources[roleId]?.Properties.ManagedPolicyArns).toBeUndefined();

    const policy = resourcesOfType(s.json, 'AWS::IAM::Policy').find(([, p]) =>
      (p.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(ref(roleId))),
    )?.[1];
    const statements = policy.PolicyDocument.Statement as {
      Sid: string;
      Action: unknown;
      Resource: unknown;
      Condition?: unknown;
    }[];
    const bySid = Object.fromEntries(statements.map((st) => [st.Sid, st]));
    const elasticacheArn = (kind: string, id: unknown, suffix = '') => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          ref('AWS::Partition'),
          ':elasticache:',
          ref('AWS::Region'),
          ':',
          ref('AWS::AccountId'),
          `:${kind}:`,
          id,
          ...(suffix ? [suffix] : []),
        ],
      ],
    });

    expect(bySid.ListWorkerTasks).toMatchObject({
      Action: 'ecs:ListTasks',
      Resource: '*',
      Condition: { ArnEquals: { 'ecs:cluster': getAtt(clusterId, 'Arn') } },
    });
    expect(bySid.DescribeWorkerTasks).toMatchObject({
      Action: 'ecs:DescribeTasks',
      Resource: {
        'Fn::Join': [
          '',
          [
            'arn:',
            ref('AWS::Partition'),
            ':ecs:',
            ref('AWS::Region'),
            ':',
            ref('AWS::AccountId'),
            ':task/',
            ref(clusterId),
            '/*',
          ],
        ],
      },
    });
    expect(bySid.DescribeCache?.Resource).toEqual(
      expect.arrayContaining([
        elasticacheArn('replicationgroup', ref(rgId)),
        elasticacheArn('cluster', ref(rgId), '-*'),
      ]),
    );
    expect(bySid.RepairParameterGroup).toMatchObject({
      Action: expect.arrayContaining([
        'elasticache:ModifyCacheParameterGroup',
        'elasticache:DescribeCacheParameters',
      ]),
      Resource: elasticacheArn('parametergroup', ref(pgId)),
    });
    expect(bySid.ReadAuthToken).toEqual({
      Sid: 'ReadAuthToken',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: ref(secretId),
    });
    // Only the ENI statement (Lambda in a VPC) and ListTasks (condition-scoped) use Resource "*".
    expect(
      statements
        .filter((st) => st.Resource === '*')
        .map((st) => st.Sid)
        .sort(),
    ).toEqual(['ListWorkerTasks', 'VpcNetworkInterfaces']);
  });

  it('is invoked by an EventBridge Scheduler schedule every minute, with retries and a dead-letter queue', () => {
    const fnId = s.stack.getLogicalId(s.stack.notifyCheck.function.node.defaultChild as never);
    const dlqId = s.stack.getLogicalId(s.stack.notifyCheck.deadLetterQueue.node.defaultChild as never);
    s.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Target: Match.objectLike({
        Arn: getAtt(fnId, 'Arn'),
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 60 },
        DeadLetterConfig: { Arn: getAtt(dlqId, 'Arn') },
      }),
    });
    expect(s.json.Resources[dlqId]?.Properties.SqsManagedSseEnabled).toBe(true);
    s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [ref(dlqId)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('does not let Lambda retry a failed check (the next run is the retry) and times out before the next run', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0 });
    const [, fn] =
      resourcesOfType(s.json, 'AWS::Lambda::Function').find(([id]) => id.startsWith('NotifyCheck')) ?? [];
    expect(fn.Timeout).toBeLessThan(60);
  });
});

describe('dashboard', () => {
  const dashboardMetrics = () =>
    referencedMetrics(s.json).filter((m) => m.referencedBy.some((id) => id.includes('Dashboard')));

  it('shows every worker and Lambda metric core/metrics.ts names', () => {
    const names = new Set(
      dashboardMetrics()
        .filter((m) => m.namespace === DEFAULT_METRICS_NAMESPACE)
        .map((m) => m.metricName),
    );
    expect([...names].sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('shows ExpiryLagMs p50 and p99 on the first row, beside the health text and the alarms', () => {
    const [, dashboard] = only(s.json, 'AWS::CloudWatch::Dashboard');
    const join = dashboard.DashboardBody['Fn::Join'] as [string, unknown[]];
    const body = JSON.parse(
      join[1].map((part) => (typeof part === 'string' ? part : 'token')).join(join[0]),
    ) as {
      widgets: { y: number; type: string; properties: { metrics?: unknown[][] } }[];
    };
    const firstRow = body.widgets.filter((w) => w.y === 0);
    expect(firstRow.map((w) => w.type)).toEqual(['text', 'metric', 'alarm']);
    const lag = (firstRow[1]?.properties.metrics ?? []).map((row) => ({
      name: row.find((item) => item === 'ExpiryLagMs' || item === '.'),
      stat: (row[row.length - 1] as { stat?: string }).stat,
    }));
    expect(lag.map((m) => m.stat)).toEqual(['p50', 'p99']);
    expect(lag[0]?.name).toBe('ExpiryLagMs');
    // TrackedKeys and NativeExpiryPrimaries have their own graphs further down.
    const later = JSON.stringify(body.widgets.filter((w) => w.y > 0));
    expect(later).toContain('TrackedKeys');
    expect(later).toContain('NativeExpiryPrimaries');
  });

  it('uses the namespace and the one dimension LeaderName for every custom metric (a breakdown: plus its own)', () => {
    const custom = referencedMetrics(s.json).filter((m) => m.namespace === DEFAULT_METRICS_NAMESPACE);
    expect(custom.length).toBeGreaterThan(0);
    const breakdowns: Record<string, string> = METRIC_BREAKDOWNS;
    for (const m of custom) {
      const { [LEADER_NAME_DIMENSION]: leaderName, ...others } = m.dimensions;
      expect(leaderName, m.metricName).toBe('default');
      if (Object.keys(others).length === 0) continue;
      // ValuesMissing by Reason: only that dimension, only values of the closed list.
      const dimension = breakdowns[m.metricName];
      expect(dimension, `${m.metricName} has no breakdown`).toBeDefined();
      expect(Object.keys(others)).toEqual([dimension]);
      expect(VALUE_MISSING_REASONS).toContain(others[dimension as string]);
    }
    const unknown = custom.filter((m) => !(METRIC_NAMES as readonly string[]).includes(m.metricName));
    expect(unknown).toEqual([]);
  });

  it('shows ValuesMissing once per reason of the closed list, beside the total, and HeldValueBytes', () => {
    const missing = dashboardMetrics().filter((m) => m.metricName === 'ValuesMissing');
    const reasons = missing.map((m) => m.dimensions[METRIC_BREAKDOWNS.ValuesMissing]);
    expect(reasons.filter((r) => r !== undefined).sort()).toEqual([...VALUE_MISSING_REASONS].sort());
    expect(reasons).toContain(undefined); // the total, under LeaderName alone
    for (const name of ['ValuesCaptured', 'ValuesReleased', 'HeldValueBytes'])
      expect(dashboardMetrics().map((m) => m.metricName)).toContain(name);
  });

  it('shows ElastiCache engine CPU, Reclaimed and connections for every member node', () => {
    const [rgId] = only(s.json, 'AWS::ElastiCache::ReplicationGroup');
    const expectedIds = ['0001-001', '0001-002', '0002-001', '0002-002', '0003-001', '0003-002'].map(
      (suffix) => `<${rgId}>-${suffix}`,
    );
    for (const metricName of ['EngineCPUUtilization', 'Reclaimed', 'CurrConnections']) {
      const ids = dashboardMetrics()
        .filter((m) => m.namespace === 'AWS/ElastiCache' && m.metricName === metricName)
        .map((m) => m.dimensions.CacheClusterId);
      expect(ids.sort(), metricName).toEqual(expectedIds);
    }
  });

  it('shows Lambda errors and duration and a Logs Insights query of leader.* events in the worker log group', () => {
    const names = dashboardMetrics()
      .filter((m) => m.namespace === 'AWS/Lambda')
      .map((m) => m.metricName);
    expect(names).toEqual(expect.arrayContaining(['Errors', 'Duration']));
    const [, dashboard] = only(s.json, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.DashboardBody);
    const logGroupId = s.stack.getLogicalId(s.stack.workers.logGroup.node.defaultChild as never);
    expect(body).toContain('filter event like /^leader\\\\\\\\./');
    expect(body).toContain(logGroupId);
  });
});

describe('alarms', () => {
  const alarms = () => resourcesOfType(s.json, 'AWS::CloudWatch::Alarm').map(([, p]) => p);
  const alarmOn = (metricName: string) =>
    alarms().find(
      (a) =>
        a.MetricName === metricName ||
        (a.Metrics as { MetricStat?: { Metric: { MetricName: string } } }[] | undefined)?.some(
          (q) => q.MetricStat?.Metric.MetricName === metricName,
        ),
    );

  it('notifies an encrypted SNS topic from all ten alarms, on alarm and on recovery', () => {
    const [topicId, topic] = only(s.json, 'AWS::SNS::Topic');
    expect(topic.KmsMasterKeyId).toBeDefined();
    s.template.resourceCountIs('AWS::SNS::Subscription', 0);
    expect(alarms()).toHaveLength(10);
    for (const alarm of alarms()) {
      expect(alarm.AlarmActions).toEqual([ref(topicId)]);
      expect(alarm.OKActions).toEqual([ref(topicId)]);
    }
    s.template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
  });

  it('fires when no leader is seen for two consecutive schedule periods, missing data breaching', () => {
    expect(alarmOn('LeaderPresent')).toMatchObject({
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      TreatMissingData: 'breaching',
      Metrics: [expect.objectContaining({ MetricStat: expect.objectContaining({ Period: 60 }) })],
    });
  });

  it('fires when PrimariesVerified < PrimariesTotal, by metric math', () => {
    const alarm = alarmOn('PrimariesVerified');
    const expression = alarm.Metrics as {
      Expression?: string;
      MetricStat?: { Metric: { MetricName: string } };
      Id: string;
    }[];
    const ids = Object.fromEntries(
      expression.filter((q) => q.MetricStat).map((q) => [q.MetricStat?.Metric.MetricName, q.Id]),
    );
    expect(expression.find((q) => q.Expression)?.Expression).toBe(
      `${ids.PrimariesTotal} - ${ids.PrimariesVerified}`,
    );
    expect(alarm).toMatchObject({ ComparisonOperator: 'GreaterThanOrEqualToThreshold', Threshold: 1 });
  });

  it('fires on expiry lag p99 (deadline -> handler) above expiryLagAlarmMs (default 1000) for three minutes', () => {
    expect(alarmOn('ExpiryLagMs')).toMatchObject({
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 1000,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
      Metrics: [
        expect.objectContaining({ MetricStat: expect.objectContaining({ Stat: 'p99', Period: 60 }) }),
      ],
    });
  });

  it('fires on processing latency p99 above the threshold, handler failures, shed events and Lambda errors', () => {
    expect(alarmOn('ProcessingLatencyMs')).toMatchObject({
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 1000,
      Metrics: [expect.objectContaining({ MetricStat: expect.objectContaining({ Stat: 'p99' }) })],
    });
    for (const metricName of ['HandlerFailures', 'EventsShed']) {
      expect(alarmOn(metricName), metricName).toMatchObject({
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        Statistic: 'Sum',
      });
    }
    expect(alarmOn('Errors')).toMatchObject({ Namespace: 'AWS/Lambda', Threshold: 1, Statistic: 'Sum' });
  });

  it('fires when value reads failed in three consecutive five-minute periods, no data not breaching', () => {
    const alarm = alarms().find((a) => a.MetricName === 'ValuesMissing');
    expect(alarm).toMatchObject({
      Dimensions: expect.arrayContaining([
        { Name: LEADER_NAME_DIMENSION, Value: 'default' },
        { Name: 'Reason', Value: 'read-failed' },
      ]),
      Statistic: 'Sum',
      Period: 300,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
    expect(alarm?.Dimensions).toHaveLength(2);
  });

  it('sequence 11: fires on the first minute with a duplicate WORKER_ID or a configuration mismatch', () => {
    for (const metricName of ['DuplicateWorkerId', 'ConfigMismatch']) {
      expect(alarmOn(metricName), metricName).toMatchObject({
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
    }
  });
});

describe('cdk-nag', () => {
  it('reports zero unacknowledged AwsSolutions findings', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    const findings = report.violations.map(
      (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
  });

  it('registers the AwsSolutions pack on the app (synthesis fails on a new finding)', () => {
    const plugins = (s.app as unknown as { _validationPlugins: { name: string }[] })._validationPlugins;
    expect(plugins.map((p) => p.name)).toContain('AwsSolutions');
  });

  it('gives every acknowledgement a reason, on a construct narrower than the stack', () => {
    const acknowledged: { path: string; id: string; reason: string }[] = [];
    for (const construct of s.stack.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          // aws-cdk-lib acknowledges some of its own CloudFormation-Validate warnings: not ours.
          if (!id.includes('AwsSolutions-')) continue;
          acknowledged.push({ path: construct.node.path, id, reason });
        }
      }
    }
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const ack of acknowledged) {
      expect(ack.path).not.toBe(s.stack.node.path);
      expect(ack.reason.length, `${ack.id} at ${ack.path}`).toBeGreaterThan(60);
    }
  });
});
