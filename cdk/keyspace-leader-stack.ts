import { CfnOutput, type Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type CacheAuth, CacheCluster, type CacheEngine } from './constructs/cache-cluster.ts';
import { CacheUsers } from './constructs/cache-users.ts';
import { type EgressMode, Network } from './constructs/network.ts';
import { NotifyCheck } from './constructs/notify-check.ts';
import { Observability } from './constructs/observability.ts';
import { WorkerService } from './constructs/worker-service.ts';

export type CacheAuthMode = CacheAuth['mode'];

export interface KeyspaceLeaderStackProps extends StackProps {
  readonly network: {
    readonly existingVpcId?: string;
    readonly egress: EgressMode;
    readonly natGateways: number;
  };
  readonly cache: {
    readonly engine: CacheEngine;
    readonly engineVersion: string;
    readonly nodeType: string;
    readonly shards: number;
    readonly replicasPerShard: number;
    readonly port: number;
    /**
     * `token` (default): one AUTH token for every client. `rbac`: ElastiCache users with the
     * least-privilege access strings of core/acl.ts (docs/security.md).
     */
    readonly auth: CacheAuthMode;
  };
  readonly worker: {
    readonly desiredCount: number;
    /** Task CPU units and memory (MiB), a Fargate size (worker-service.ts, FARGATE_TASK_SIZES). */
    readonly cpu: number;
    readonly memoryMiB: number;
    readonly handler: string;
    /** PROCESSED_LOG: `all`, `failures` or `sample:N` (docs/deploy.md, CloudWatch Logs cost). */
    readonly processedLog: string;
    /** Docker build context (repository root) and Dockerfile path relative to it. */
    readonly imageDirectory: string;
    readonly dockerfile: string;
  };
  readonly notifyCheck: {
    readonly entry: string;
    readonly depsLockFilePath: string;
    readonly scheduleRate: Duration;
  };
  readonly leaderName: string;
  readonly metricsNamespace: string;
  readonly logLevel: string;
  readonly logRetention: logs.RetentionDays;
  readonly latencyP99ThresholdMs: number;
  /**
   * PRECISE_EXPIRY of the workers and the Lambda, and the parameter group's notify-keyspace-events
   * (`Egx`, else `Ex`): one value for all three.
   */
  readonly preciseExpiry: boolean;
  /**
   * CAPTURE_VALUES of the workers (value capture; effective only with `preciseExpiry`). The other
   * capture settings (EXPIRY_READ_AHEAD_MS, VALUE_MAX_BYTES, VALUE_BUDGET_BYTES) keep the worker's
   * defaults, as EXPIRY_TRACK_MAX_KEYS and EXPIRY_SCAN_KEYS_PER_S do: the budget's default is sized
   * for the task's fixed 512 MiB (docs/deploy.md).
   */
  readonly captureValues: boolean;
  /** The ExpiryLagMs p99 alarm's bound (ms). */
  readonly expiryLagAlarmMs: number;
  readonly alarmEmail?: string;
}

/** keyspace-leader on AWS: VPC, ElastiCache cluster, Fargate workers, scheduled check, dashboard, alarms. */
export class KeyspaceLeaderStack extends Stack {
  readonly network: Network;
  readonly cache: CacheCluster;
  /** The RBAC users and group (`cache.auth` rbac); undefined with the AUTH token. */
  readonly cacheUsers: CacheUsers | undefined;
  readonly workers: WorkerService;
  readonly notifyCheck: NotifyCheck;
  readonly observability: Observability;

  constructor(scope: Construct, id: string, props: KeyspaceLeaderStackProps) {
    super(scope, id, props);

    this.network = new Network(this, 'Network', {
      ...(props.network.existingVpcId === undefined ? {} : { existingVpcId: props.network.existingVpcId }),
      egress: props.network.egress,
      natGateways: props.network.natGateways,
      logRetention: props.logRetention,
    });
    const { vpc, privateSubnets } = this.network;

    // Clients only open connections: no ingress; egress to the cache port and HTTPS (AWS APIs through
    // the endpoints or the NAT; ECR layers through the S3 gateway endpoint).
    const clientSecurityGroup = (sgId: string, description: string): ec2.SecurityGroup => {
      const sg = new ec2.SecurityGroup(this, sgId, { vpc, description, allowAllOutbound: false });
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs');
      this.network.allowEndpointAccessFrom(sg, description);
      return sg;
    };
    const workerSecurityGroup = clientSecurityGroup('WorkerSecurityGroup', 'keyspace-leader workers');
    const lambdaSecurityGroup = clientSecurityGroup(
      'NotifyCheckSecurityGroup',
      'keyspace-leader notify-check Lambda',
    );

    const { auth, ...cacheProps } = props.cache;
    this.cacheUsers =
      auth === 'rbac'
        ? new CacheUsers(this, 'CacheUsers', {
            // User and group ids are account-wide: the stack name keeps two stacks apart.
            idPrefix: this.stackName.toLowerCase().slice(0, 24).replace(/-+/g, '-').replace(/-$/, ''),
            leaderName: props.leaderName,
            preciseExpiry: props.preciseExpiry,
          })
        : undefined;
    this.cache = new CacheCluster(this, 'Cache', {
      vpc,
      subnets: privateSubnets,
      ...cacheProps,
      preciseExpiry: props.preciseExpiry,
      auth: this.cacheUsers ? { mode: 'rbac', userGroupId: this.cacheUsers.userGroupId } : { mode: 'token' },
    });
    const credentials = (user: 'worker' | 'notifyCheck') => {
      if (this.cacheUsers) {
        const { userName, password } = this.cacheUsers[user];
        return { redisUsername: userName, redisPassword: password };
      }
      const token = this.cache.authToken;
      if (token === undefined) throw new Error('cache without RBAC users has no AUTH token');
      return { redisPassword: token };
    };
    this.cache.allowClient(workerSecurityGroup, 'keyspace-leader workers');
    this.cache.allowClient(lambdaSecurityGroup, 'keyspace-leader notify-check Lambda');

    this.workers = new WorkerService(this, 'Workers', {
      vpc,
      subnets: privateSubnets,
      securityGroup: workerSecurityGroup,
      imageDirectory: props.worker.imageDirectory,
      dockerfile: props.worker.dockerfile,
      desiredCount: props.worker.desiredCount,
      cpu: props.worker.cpu,
      memoryMiB: props.worker.memoryMiB,
      redisNodes: this.cache.configurationEndpoint,
      ...credentials('worker'),
      leaderName: props.leaderName,
      metricsNamespace: props.metricsNamespace,
      logLevel: props.logLevel,
      handler: props.worker.handler,
      processedLog: props.worker.processedLog,
      preciseExpiry: props.preciseExpiry,
      captureValues: props.captureValues,
      logRetention: props.logRetention,
    });

    this.notifyCheck = new NotifyCheck(this, 'NotifyCheck', {
      vpc,
      subnets: privateSubnets,
      securityGroup: lambdaSecurityGroup,
      entry: props.notifyCheck.entry,
      depsLockFilePath: props.notifyCheck.depsLockFilePath,
      scheduleRate: props.notifyCheck.scheduleRate,
      redisNodes: this.cache.configurationEndpoint,
      ...credentials('notifyCheck'),
      replicationGroupId: this.cache.replicationGroupId,
      replicationGroupArn: this.cache.replicationGroupArn,
      memberClusterArnPattern: this.cache.memberClusterArnPattern,
      parameterGroupArn: this.cache.parameterGroupArn,
      ecsClusterName: this.workers.cluster.clusterName,
      ecsClusterArn: this.workers.cluster.clusterArn,
      ecsServiceName: this.workers.service.serviceName,
      leaderName: props.leaderName,
      metricsNamespace: props.metricsNamespace,
      logLevel: props.logLevel,
      preciseExpiry: props.preciseExpiry,
      logRetention: props.logRetention,
    });

    this.observability = new Observability(this, 'Observability', {
      leaderName: props.leaderName,
      metricsNamespace: props.metricsNamespace,
      scheduleRate: props.notifyCheck.scheduleRate,
      latencyP99ThresholdMs: props.latencyP99ThresholdMs,
      expiryLagAlarmMs: props.expiryLagAlarmMs,
      ...(props.alarmEmail === undefined ? {} : { alarmEmail: props.alarmEmail }),
      notifyFunction: this.notifyCheck.function,
      workerLogGroup: this.workers.logGroup,
      ecsClusterName: this.workers.cluster.clusterName,
      ecsServiceName: this.workers.service.serviceName,
      cacheMemberClusterIds: this.cache.memberClusterIds,
    });

    new CfnOutput(this, 'ConfigurationEndpoint', {
      description: 'ElastiCache configuration endpoint (host:port): the REDIS_NODES seed, TLS on',
      value: this.cache.configurationEndpoint,
    });
    new CfnOutput(this, 'DashboardUrl', {
      description: 'CloudWatch dashboard to open first',
      value: this.observability.dashboardUrl,
    });
    if (this.cache.authToken) {
      new CfnOutput(this, 'AuthTokenSecretArn', {
        description: 'Secrets Manager secret holding the ElastiCache AUTH token (REDIS_PASSWORD)',
        value: this.cache.authToken.secretArn,
      });
    }
    if (this.cacheUsers) {
      new CfnOutput(this, 'WorkerPasswordSecretArn', {
        description: `Secrets Manager secret holding the password of the RBAC user ${this.cacheUsers.worker.userName}`,
        value: this.cacheUsers.worker.password.secretArn,
      });
      new CfnOutput(this, 'NotifyCheckPasswordSecretArn', {
        description: `Secrets Manager secret holding the password of the RBAC user ${this.cacheUsers.notifyCheck.userName}`,
        value: this.cacheUsers.notifyCheck.password.secretArn,
      });
      new CfnOutput(this, 'UserGroupId', {
        description: 'ElastiCache RBAC user group of the replication group',
        value: this.cacheUsers.userGroupId,
      });
    }
    new CfnOutput(this, 'WorkerServiceName', {
      description: 'ECS service running the workers',
      value: this.workers.service.serviceName,
    });
    new CfnOutput(this, 'WorkerClusterName', {
      description: 'ECS cluster of the worker service',
      value: this.workers.cluster.clusterName,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'SNS topic the alarms notify',
      value: this.observability.alarmTopic.topicArn,
    });
  }
}
