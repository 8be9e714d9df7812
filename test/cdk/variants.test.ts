/**
 * Context-driven variants: NAT egress with Redis OSS and non-default sizes, an existing VPC (lookup
 * answered from context, as a committed cdk.context.json would), and invalid context.
 * Only what differs from the default deployment is asserted here; stack.test.ts covers the rest.
 */
import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContextError, readContext, stackPropsFromContext } from '../../cdk/app.ts';
import { resourcesOfType, type Synthesized, synthesize } from './synth.ts';

const nagFindings = (s: Synthesized): string[] =>
  new AwsSolutionsChecks()
    .validateScope(s.app)
    .violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);

describe('NAT egress, Redis OSS, custom sizes, alarm e-mail (context given as CLI strings)', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize({
      egress: 'nat',
      natGateways: '2',
      cacheEngine: 'redis',
      cacheShards: '2',
      cacheReplicasPerShard: '2',
      cachePort: '7000',
      workerDesiredCount: '5',
      leaderName: 'orders',
      metricsNamespace: 'Acme/KeyspaceLeader',
      scheduleRateMinutes: '5',
      latencyP99ThresholdMs: '250',
      alarmEmail: 'ops@example.com',
      logRetentionDays: '90',
      processedLog: 'sample:100',
      preciseExpiry: 'false',
      captureValues: 'false',
      expiryLagAlarmMs: '300',
      workerCpu: '512',
      workerMemoryMiB: '1024',
    });
  });

  it('sizes the worker task from workerCpu and workerMemoryMiB', () => {
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '512', Memory: '1024' });
  });

  it('preciseExpiry=false: Ex in the parameter group, PRECISE_EXPIRY=false for the workers and the Lambda', () => {
    s.template.hasResourceProperties('AWS::ElastiCache::ParameterGroup', {
      Properties: Match.objectLike({ 'notify-keyspace-events': 'Ex' }),
    });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PRECISE_EXPIRY: 'false', NOTIFY_MODE: 'auto' }) },
    });
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({ Environment: Match.arrayWith([{ Name: 'PRECISE_EXPIRY', Value: 'false' }]) }),
      ],
    });
  });

  it('captureValues=false: CAPTURE_VALUES=false for the workers (the Lambda does not read values)', () => {
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({ Environment: Match.arrayWith([{ Name: 'CAPTURE_VALUES', Value: 'false' }]) }),
      ],
    });
    const lambdaEnv = resourcesOfType(s.json, 'AWS::Lambda::Function').map(
      ([, p]) => (p.Environment as { Variables?: Record<string, string> } | undefined)?.Variables ?? {},
    );
    for (const env of lambdaEnv) expect(env).not.toHaveProperty('CAPTURE_VALUES');
  });

  it('uses expiryLagAlarmMs as the bound of the ExpiryLagMs p99 alarm', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 300,
      Metrics: [
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({ MetricName: 'ExpiryLagMs' }),
            Stat: 'p99',
          }),
        }),
      ],
    });
  });

  it('creates public subnets with one NAT gateway per AZ and no interface endpoints', () => {
    s.template.resourceCountIs('AWS::EC2::NatGateway', 2);
    s.template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    const endpoints = resourcesOfType(s.json, 'AWS::EC2::VPCEndpoint').map(([, p]) => p.VpcEndpointType);
    expect(endpoints).toEqual(['Gateway']);
  });

  it('uses the redis engine with the redis7 parameter family and the requested topology and port', () => {
    s.template.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      Engine: 'redis',
      EngineVersion: '7.1',
      NumNodeGroups: 2,
      ReplicasPerNodeGroup: 2,
      Port: 7000,
    });
    s.template.hasResourceProperties('AWS::ElastiCache::ParameterGroup', {
      CacheParameterGroupFamily: 'redis7',
    });
  });

  it('passes leader name, namespace, PROCESSED_LOG and desired count through to the service and the Lambda', () => {
    s.template.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 5 });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ LEADER_NAME: 'orders', METRICS_NAMESPACE: 'Acme/KeyspaceLeader' }),
      },
    });
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: 'LEADER_NAME', Value: 'orders' },
            { Name: 'METRICS_NAMESPACE', Value: 'Acme/KeyspaceLeader' },
            { Name: 'PROCESSED_LOG', Value: 'sample:100' },
          ]),
        }),
      ],
    });
  });

  it('schedules at the given rate and evaluates the no-leader alarm over two of those periods', () => {
    s.template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(5 minutes)' });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      EvaluationPeriods: 2,
      TreatMissingData: 'breaching',
      Metrics: [
        Match.objectLike({
          MetricStat: {
            Metric: {
              Namespace: 'Acme/KeyspaceLeader',
              MetricName: 'LeaderPresent',
              Dimensions: [{ Name: 'LeaderName', Value: 'orders' }],
            },
            Period: 300,
            Stat: 'Maximum',
          },
        }),
      ],
    });
  });

  it('uses the latency threshold, the log retention and subscribes the e-mail address', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 250,
      Metrics: [Match.objectLike({ MetricStat: Match.objectLike({ Stat: 'p99' }) })],
    });
    const logGroups = resourcesOfType(s.json, 'AWS::Logs::LogGroup');
    expect(logGroups).toHaveLength(3);
    for (const [, logGroup] of logGroups) {
      expect(logGroup.RetentionInDays).toBe(90);
    }
    s.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  it('has no unacknowledged cdk-nag findings either', () => {
    expect(nagFindings(s)).toEqual([]);
  });
});

describe('existing VPC by id (lookup answered from context, as from a committed cdk.context.json)', () => {
  const account = '111111111111';
  const region = 'eu-west-1';
  const vpcId = 'vpc-0123456789abcdef0';
  const subnet = (n: number, az: string) => ({
    subnetId: `subnet-0000000000000000${n}`,
    cidr: `10.1.${n}.0/24`,
    availabilityZone: `${region}${az}`,
    routeTableId: `rtb-0000000000000000${n}`,
  });
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize(
      {
        vpcId,
        [`vpc-provider:account=${account}:filter.vpc-id=${vpcId}:region=${region}:returnAsymmetricSubnets=true`]:
          {
            vpcId,
            vpcCidrBlock: '10.1.0.0/16',
            ownerAccountId: account,
            availabilityZones: [],
            subnetGroups: [
              { name: 'Public', type: 'Public', subnets: [subnet(1, 'a'), subnet(2, 'b')] },
              { name: 'Private', type: 'Private', subnets: [subnet(3, 'a'), subnet(4, 'b')] },
            ],
          },
      },
      { CDK_DEFAULT_ACCOUNT: account, CDK_DEFAULT_REGION: region },
    );
  });

  it('pins the environment (lookups need it) and needs no further lookups', () => {
    expect(s.stack.account).toBe(account);
    expect(s.stack.region).toBe(region);
    expect(s.assembly.manifest.missing ?? []).toEqual([]);
  });

  it('creates no VPC, NAT or endpoints and places everything in the private subnets of the given VPC', () => {
    s.template.resourceCountIs('AWS::EC2::VPC', 0);
    s.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    s.template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    s.template.resourceCountIs('AWS::EC2::FlowLog', 0);
    s.template.hasResourceProperties('AWS::ElastiCache::SubnetGroup', {
      SubnetIds: ['subnet-00000000000000003', 'subnet-00000000000000004'],
    });
    s.template.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: {
        AwsvpcConfiguration: Match.objectLike({
          Subnets: ['subnet-00000000000000003', 'subnet-00000000000000004'],
        }),
      },
    });
    s.template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: vpcId });
  });

  it('has no unacknowledged cdk-nag findings either', () => {
    expect(nagFindings(s)).toEqual([]);
  });
});

describe('invalid context', () => {
  const problemsOf = (context: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] => {
    try {
      const parsed = readContext(new App({ context }));
      stackPropsFromContext(parsed, env);
    } catch (error) {
      if (error instanceof ContextError) return [...error.problems];
      throw error;
    }
    return [];
  };

  it('lists every problem at once', () => {
    const problems = problemsOf({
      cacheShards: '0',
      cachePort: '6379',
      cacheEngine: 'memcached',
      alarmEmail: 'not-an-address',
      logRetentionDays: '31',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      ['alarmEmail', 'cacheEngine', 'cachePort', 'cacheShards', 'logRetentionDays'].sort(),
    );
  });

  it('accepts preciseExpiry and captureValues as booleans or true/false and expiryLagAlarmMs as a positive integer', () => {
    for (const value of [true, false, 'true', 'false', 'TRUE'])
      expect(problemsOf({ preciseExpiry: value })).toEqual([]);
    expect(problemsOf({ preciseExpiry: 'yes' })).toEqual([expect.stringMatching(/^preciseExpiry: /)]);
    expect(problemsOf({ expiryLagAlarmMs: '0' })).toEqual([expect.stringMatching(/^expiryLagAlarmMs: /)]);
    for (const value of [true, false, 'true', 'False'])
      expect(problemsOf({ captureValues: value })).toEqual([]);
    expect(problemsOf({ captureValues: 'off' })).toEqual([expect.stringMatching(/^captureValues: /)]);
    expect(stackPropsFromContext(readContext(new App({ context: {} })), {})).toMatchObject({
      preciseExpiry: true,
      captureValues: true,
      expiryLagAlarmMs: 1000,
    });
    expect(
      stackPropsFromContext(readContext(new App({ context: { captureValues: 'FALSE' } })), {}).captureValues,
    ).toBe(false);
    expect(
      stackPropsFromContext(readContext(new App({ context: { preciseExpiry: 'false' } })), {}).preciseExpiry,
    ).toBe(false);
  });

  it('accepts PROCESSED_LOG values the worker accepts and rejects the others at synth', () => {
    for (const value of ['all', 'failures', 'sample:1', 'sample:999999', 'sample:1000000']) {
      expect(problemsOf({ processedLog: value })).toEqual([]);
    }
    for (const value of ['none', 'sample:0', 'sample:1000001', 'sample:', 'sample:01']) {
      expect(problemsOf({ processedLog: value })).toEqual([expect.stringMatching(/^processedLog: /)]);
    }
  });

  it('accepts only the task sizes Fargate runs, and names the memory range of the CPU given', () => {
    expect(problemsOf({ workerCpu: '256', workerMemoryMiB: '512' })).toEqual([]);
    expect(problemsOf({ workerCpu: 4096, workerMemoryMiB: 30720 })).toEqual([]);
    expect(problemsOf({ workerCpu: '300' })).toEqual([expect.stringMatching(/^workerCpu: /)]);
    // 4 vCPU need 8-30 GiB: the default 2 GiB does not fit; 3.5 GiB fits no size above 0.5 vCPU.
    expect(problemsOf({ workerCpu: '4096' })).toEqual([
      'workerMemoryMiB: 2048 MiB does not fit workerCpu 4096 (Fargate: 8192 to 30720 in steps of 1024)',
    ]);
    expect(problemsOf({ workerCpu: '256' })).toEqual([]);
    // 0.25 vCPU runs with 512, 1024 or 2048 MiB only: 1536 lies between them but is not a size.
    expect(problemsOf({ workerCpu: '256', workerMemoryMiB: '1536' })).toEqual([
      'workerMemoryMiB: 1536 MiB does not fit workerCpu 256 (Fargate: 512, 1024 or 2048)',
    ]);
    expect(problemsOf({ workerCpu: '1024', workerMemoryMiB: '3584' })).toEqual([
      'workerMemoryMiB: 3584 MiB does not fit workerCpu 1024 (Fargate: 2048 to 8192 in steps of 1024)',
    ]);
  });

  it('rejects egress modes that do not fit the VPC choice', () => {
    expect(problemsOf({ egress: 'existing' })).toEqual([expect.stringMatching(/^egress: .*needs vpcId/)]);
    expect(
      problemsOf({
        vpcId: 'vpc-0123456789abcdef0',
        egress: 'nat',
        account: '111111111111',
        region: 'us-east-1',
      }),
    ).toEqual([expect.stringMatching(/^egress: /)]);
  });

  it('requires an account and region for a VPC lookup', () => {
    expect(problemsOf({ vpcId: 'vpc-0123456789abcdef0' })).toEqual([
      expect.stringMatching(/^vpcId: .*account and region/),
    ]);
    expect(
      problemsOf({ vpcId: 'vpc-0123456789abcdef0', account: '111111111111', region: 'us-east-1' }),
    ).toEqual([]);
  });

  it('defaults to new-VPC endpoints egress, and to existing egress with a vpcId', () => {
    const defaults = stackPropsFromContext(readContext(new App()), {});
    expect(defaults.network).toEqual({ egress: 'endpoints', natGateways: 1 });
    expect(defaults.env).toBeUndefined();
    const existing = stackPropsFromContext(
      readContext(new App({ context: { vpcId: 'vpc-0123456789abcdef0' } })),
      {
        CDK_DEFAULT_ACCOUNT: '111111111111',
        CDK_DEFAULT_REGION: 'us-east-1',
      },
    );
    expect(existing.network.egress).toBe('existing');
    expect(existing.env).toEqual({ account: '111111111111', region: 'us-east-1' });
  });
});
