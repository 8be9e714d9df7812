import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { wildcardResourceFinding } from '../nag.ts';

/**
 * ESM output with CJS dependencies (ioredis): esbuild's `require` shim throws for Node built-ins
 * unless a real `require` exists in module scope.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __klCreateRequire } from 'node:module'; const require = __klCreateRequire(import.meta.url);";

export interface NotifyCheckProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  /** TypeScript entry exporting `handler`. */
  readonly entry: string;
  /** package-lock.json of the project (esbuild's working directory). */
  readonly depsLockFilePath: string;
  readonly scheduleRate: Duration;
  readonly redisNodes: string;
  /** Read at cold start (REDIS_PASSWORD_SECRET_ARN): the AUTH token, or the RBAC check user's password. */
  readonly redisPassword: secretsmanager.ISecret;
  /** REDIS_USERNAME: the RBAC check user; undefined with the AUTH token. */
  readonly redisUsername?: string;
  readonly replicationGroupId: string;
  readonly replicationGroupArn: string;
  readonly memberClusterArnPattern: string;
  readonly parameterGroupArn: string;
  readonly ecsClusterName: string;
  readonly ecsClusterArn: string;
  readonly ecsServiceName: string;
  readonly leaderName: string;
  readonly metricsNamespace: string;
  readonly logLevel: string;
  /** PRECISE_EXPIRY: the flags the check enforces (`Egx`, else `Ex`), as the workers run. */
  readonly preciseExpiry: boolean;
  readonly logRetention: logs.RetentionDays;
}

/**
 * The scheduled Lambda: enforces `notify-keyspace-events`, verifies every primary with a canary and
 * reports the leader (checked against ECS) as EMF metrics. Least-privilege role, in the VPC.
 */
export class NotifyCheck extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly schedule: scheduler.Schedule;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: NotifyCheckProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // An explicit role instead of the AWS managed Lambda policies: logs go to this one log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'keyspace-leader notify-check Lambda',
    });

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      depsLockFilePath: props.depsLockFilePath,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // Shorter than the shortest schedule (1 minute) so two runs never overlap (one run's canaries
      // would otherwise be seen by the next).
      timeout: Duration.seconds(50),
      role: this.role,
      logGroup: this.logGroup,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      allowPublicSubnet: false,
      // A failed check is not retried by Lambda: the next scheduled run is the retry.
      retryAttempts: 0,
      environment: {
        NOTIFY_MODE: 'auto',
        PRECISE_EXPIRY: String(props.preciseExpiry),
        REPLICATION_GROUP_ID: props.replicationGroupId,
        ECS_CLUSTER: props.ecsClusterName,
        ECS_SERVICE: props.ecsServiceName,
        REDIS_NODES: props.redisNodes,
        REDIS_TLS: 'true',
        LEADER_NAME: props.leaderName,
        METRICS_NAMESPACE: props.metricsNamespace,
        LOG_LEVEL: props.logLevel,
        // Lambda has no ECS-style secret injection: the handler reads the token at cold start.
        REDIS_PASSWORD_SECRET_ARN: props.redisPassword.secretArn,
        ...(props.redisUsername === undefined ? {} : { REDIS_USERNAME: props.redisUsername }),
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        // Local esbuild only: synthesis must work without Docker.
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // Bundle the AWS SDK clients too: the versions tested with are the versions deployed.
        externalModules: [],
      },
    });

    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'VpcNetworkInterfaces',
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListWorkerTasks',
        actions: ['ecs:ListTasks'],
        resources: ['*'],
        conditions: { ArnEquals: { 'ecs:cluster': props.ecsClusterArn } },
      }),
    );
    const describeTasksResource = stack.formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${props.ecsClusterName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeWorkerTasks',
        actions: ['ecs:DescribeTasks'],
        resources: [describeTasksResource],
        conditions: { ArnEquals: { 'ecs:cluster': props.ecsClusterArn } },
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeCache',
        actions: ['elasticache:DescribeReplicationGroups', 'elasticache:DescribeCacheClusters'],
        resources: [props.replicationGroupArn, props.memberClusterArnPattern],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RepairParameterGroup',
        actions: [
          'elasticache:DescribeCacheParameters',
          'elasticache:DescribeCacheParameterGroups',
          'elasticache:ModifyCacheParameterGroup',
        ],
        resources: [props.parameterGroupArn],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: props.redisUsername === undefined ? 'ReadAuthToken' : 'ReadRedisPassword',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [props.redisPassword.secretArn],
      }),
    );

    const rolePolicy = this.role.node.tryFindChild('DefaultPolicy');
    if (rolePolicy === undefined) throw new Error('notify-check role has no default policy');
    Validations.of(rolePolicy).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Two statements: (1) the ENI actions Lambda needs to run in a VPC (ec2:Describe* has no resource-level ' +
          'permissions; this is what AWSLambdaVPCAccessExecutionRole grants); (2) ecs:ListTasks, which is scoped ' +
          "by the ecs:cluster condition to this stack's cluster instead of by resource.",
      },
      {
        id: wildcardResourceFinding(this, describeTasksResource),
        reason:
          "Task ids are generated by ECS at run time; the ARN pattern is limited to tasks of this stack's cluster " +
          '(and the ecs:cluster condition says the same).',
      },
      {
        id: wildcardResourceFinding(this, props.memberClusterArnPattern),
        reason:
          'The member clusters (one per node) are named <replication group id>-<shard>-<node> by ElastiCache and ' +
          'change with resharding; the pattern covers only the members of this replication group.',
      },
    );

    this.deadLetterQueue = new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of the EventBridge Scheduler target (a scheduler DLQ, not a ' +
        'queue redrive policy, which is what the rule looks for); it has no consumer to fail.',
    });

    // Our own role (instead of the stack-wide one the target would create) keeps its grants here.
    const schedulerRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'EventBridge Scheduler: invoke the notify-check Lambda, dead-letter to its queue',
    });
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'keyspace-leader notify-check: enforce notifications, verify primaries, report the leader',
      schedule: scheduler.ScheduleExpression.rate(props.scheduleRate),
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role: schedulerRole,
        retryAttempts: 2,
        // A check older than one period is superseded by the next run.
        maxEventAge: Duration.seconds(Math.max(60, props.scheduleRate.toSeconds())),
        deadLetterQueue: this.deadLetterQueue,
      }),
    });
    const schedulerPolicy = schedulerRole.node.tryFindChild('DefaultPolicy');
    if (schedulerPolicy === undefined) throw new Error('scheduler role has no default policy');
    // The first invocation must not race the role's policy.
    this.schedule.node.addDependency(schedulerRole);
    Validations.of(schedulerPolicy).acknowledge({
      id: wildcardResourceFinding(this, `${this.function.functionArn}:*`),
      reason:
        'lambda:InvokeFunction on this one function and its versions/aliases (<arn>:*), as granted by ' +
        'grantInvoke; no other function matches.',
    });
  }
}
