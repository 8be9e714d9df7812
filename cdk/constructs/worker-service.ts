import { Duration, RemovalPolicy, Size, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** The image's unprivileged user (node:24-slim's `node`, uid 1000); the task runs the worker as it. */
export const WORKER_CONTAINER_USER = 'node';

/** The worker's health endpoint port (env HEALTH_PORT); the container health check calls it. */
export const WORKER_HEALTH_PORT = 8081;

/**
 * SIGTERM-to-SIGKILL window. The worker's graceful shutdown (stop intake, drain or abort, release the
 * lease, publish `released`) takes < 5 s; 30 s leaves 6x for a slow release during a cache failover
 * (commands wait for cluster redirection) on the smallest task (0.25 vCPU, throttled).
 */
export const WORKER_STOP_TIMEOUT = Duration.seconds(30);

/**
 * The container health check (seconds). With WORKER_STOP_TIMEOUT it bounds how long old and new tasks
 * overlap in a rolling deploy: worker/leader/identity-check.ts `DEPLOY_OVERLAP_MS` is derived from
 * these (test/cdk/deploy-overlap.test.ts keeps it so).
 */
export const WORKER_HEALTH_CHECK = {
  intervalSeconds: 15,
  timeoutSeconds: 5,
  retries: 3,
  startPeriodSeconds: 60,
} as const;

const mibRange = (fromMiB: number, toMiB: number): number[] =>
  Array.from({ length: (toMiB - fromMiB) / 1024 + 1 }, (_, i) => fromMiB + i * 1024);

/**
 * Fargate's task sizes: CPU units (1024 = 1 vCPU) and the memory each allows, in MiB
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html).
 */
export const FARGATE_TASK_SIZES: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: mibRange(1024, 4096),
  1024: mibRange(2048, 8192),
  2048: mibRange(4096, 16_384),
  4096: mibRange(8192, 30_720),
};

/**
 * The worker task's default size: 1 vCPU, 2 GiB. On-time expiry handles a key's expiry in a burst
 * with every other key sharing its deadline, and the burst needs the CPU at once: 1,000 keys sharing
 * one deadline took the worker's main thread ~45-70 ms of CPU and V8's other threads as much again.
 * Under a CPU quota like Fargate's, deadline -> handler p99 for such a burst was 0.48-0.70 s at 0.25
 * vCPU, 0.09-0.35 s at 0.5 and 0.04-0.17 s at 1 (docs/deploy.md, "Task size", from bench/on-time.ts
 * and two runs by hand); 1 vCPU needs at least 2 GiB. Smaller tasks are a context setting away.
 */
export const WORKER_TASK_SIZE_DEFAULTS = { cpu: 1024, memoryMiB: 2048 } as const;

/** Why `memoryMiB` does not fit `cpu` on Fargate (or `cpu` is no Fargate size); undefined when it fits. */
export function fargateTaskSizeProblem(cpu: number, memoryMiB: number): string | undefined {
  const allowed = FARGATE_TASK_SIZES[cpu];
  if (allowed === undefined)
    return `cpu ${cpu} is not a Fargate size (${Object.keys(FARGATE_TASK_SIZES).join(', ')})`;
  if (allowed.includes(memoryMiB)) return undefined;
  const text =
    allowed.length <= 3
      ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}`
      : `${allowed[0]} to ${allowed.at(-1)} in steps of 1024`;
  return `${memoryMiB} MiB does not fit workerCpu ${cpu} (Fargate: ${text})`;
}

export interface WorkerServiceProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  /** Docker build context (the repository root) and the Dockerfile inside it. */
  readonly imageDirectory: string;
  readonly dockerfile: string;
  readonly desiredCount: number;
  /** Task CPU units (1024 = 1 vCPU), a Fargate size. @default WORKER_TASK_SIZE_DEFAULTS.cpu */
  readonly cpu?: number;
  /** Task memory in MiB, one Fargate allows with `cpu`. @default WORKER_TASK_SIZE_DEFAULTS.memoryMiB */
  readonly memoryMiB?: number;
  /** `host:port` seed(s) for REDIS_NODES. */
  readonly redisNodes: string;
  /** REDIS_PASSWORD: the AUTH token, or the RBAC worker user's password. */
  readonly redisPassword: secretsmanager.ISecret;
  /** REDIS_USERNAME: the RBAC worker user; undefined with the AUTH token. */
  readonly redisUsername?: string;
  readonly leaderName: string;
  readonly metricsNamespace: string;
  readonly logLevel: string;
  readonly handler: string;
  /** PROCESSED_LOG of the worker: which completed calls get a `key.processed` line. */
  readonly processedLog: string;
  /** PRECISE_EXPIRY of the worker (on-time expiry; the Lambda gets the same value). */
  readonly preciseExpiry: boolean;
  /** CAPTURE_VALUES of the worker (value capture; off whatever this says when `preciseExpiry` is). */
  readonly captureValues: boolean;
  readonly logRetention: logs.RetentionDays;
}

/** ECS cluster and the Fargate (ARM64) service running the workers; no load balancer. */
export class WorkerService extends Construct {
  readonly cluster: ecs.Cluster;
  readonly service: ecs.FargateService;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: WorkerServiceProps) {
    super(scope, id);
    const cpu = props.cpu ?? WORKER_TASK_SIZE_DEFAULTS.cpu;
    const memoryMiB = props.memoryMiB ?? WORKER_TASK_SIZE_DEFAULTS.memoryMiB;
    const sizeProblem = fargateTaskSizeProblem(cpu, memoryMiB);
    if (sizeProblem !== undefined) throw new RangeError(`WorkerService: ${sizeProblem}`);

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENHANCED,
    });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu,
      memoryLimitMiB: memoryMiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      // Node and handler modules may write temporary files; the root filesystem is read-only.
      volumes: [{ name: 'tmp' }],
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds only non-secret configuration (REDIS_NODES, REDIS_TLS, LEADER_NAME, ' +
        'METRICS_NAMESPACE, LOG_LEVEL, HANDLER, PROCESSED_LOG, PRECISE_EXPIRY, CAPTURE_VALUES, HEALTH_PORT, and with RBAC the user name REDIS_USERNAME); the ' +
        'password (AUTH token or RBAC password) is injected from Secrets Manager as an ECS secret (REDIS_PASSWORD).',
    });

    this.container = this.taskDefinition.addContainer('worker', {
      image: ecs.ContainerImage.fromAsset(props.imageDirectory, {
        file: props.dockerfile,
        platform: Platform.LINUX_ARM64,
      }),
      essential: true,
      readonlyRootFilesystem: true,
      // Non-root, whatever the image says (worker/Dockerfile also ends with USER node).
      user: WORKER_CONTAINER_USER,
      // A minimal init as PID 1 forwards SIGTERM to node and reaps orphaned processes.
      linuxParameters: new ecs.LinuxParameters(this, 'LinuxParameters', { initProcessEnabled: true }),
      stopTimeout: WORKER_STOP_TIMEOUT,
      environment: {
        REDIS_NODES: props.redisNodes,
        REDIS_TLS: 'true',
        LEADER_NAME: props.leaderName,
        METRICS_NAMESPACE: props.metricsNamespace,
        LOG_LEVEL: props.logLevel,
        HANDLER: props.handler,
        PROCESSED_LOG: props.processedLog,
        PRECISE_EXPIRY: String(props.preciseExpiry),
        CAPTURE_VALUES: String(props.captureValues),
        HEALTH_PORT: String(WORKER_HEALTH_PORT),
        ...(props.redisUsername === undefined ? {} : { REDIS_USERNAME: props.redisUsername }),
      },
      secrets: {
        REDIS_PASSWORD: ecs.Secret.fromSecretsManager(props.redisPassword),
      },
      // 200 only while connected and subscribed to every known primary (see worker/healthcheck.ts).
      healthCheck: {
        command: ['CMD', 'node', 'dist/worker/healthcheck.mjs'],
        interval: Duration.seconds(WORKER_HEALTH_CHECK.intervalSeconds),
        timeout: Duration.seconds(WORKER_HEALTH_CHECK.timeoutSeconds),
        retries: WORKER_HEALTH_CHECK.retries,
        startPeriod: Duration.seconds(WORKER_HEALTH_CHECK.startPeriodSeconds),
      },
      logging: ecs.LogDrivers.awsLogs({
        logGroup: this.logGroup,
        streamPrefix: 'worker',
        // A blocked stdout would stall the event loop and with it the lease renewals: drop log lines
        // (after a 25 MiB buffer) rather than lose the lease while CloudWatch Logs is unreachable.
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
        maxBufferSize: Size.mebibytes(25),
      }),
    });
    const executionPolicy = this.taskDefinition.obtainExecutionRole().node.tryFindChild('DefaultPolicy');
    if (executionPolicy === undefined) throw new Error('worker execution role has no default policy');
    Validations.of(executionPolicy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken has no resource-level permissions (it returns a registry login, not a ' +
        'repository); image pulls themselves are limited to the asset repository.',
    });
    this.container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: props.desiredCount,
      // Start the new tasks before stopping the old ones: two versions overlap during a deploy,
      // which the lease tolerates (only the holder processes; the old leader releases on SIGTERM).
      // How long that overlap may last: worker/leader/identity-check.ts DEPLOY_OVERLAP_MS.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      assignPublicIp: false,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      enableExecuteCommand: false,
      availabilityZoneRebalancing: ecs.AvailabilityZoneRebalancing.ENABLED,
    });
  }
}
