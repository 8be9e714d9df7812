import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { VALUE_CAPTURE_DEFAULTS } from '../../core/defaults.ts';
import {
  type CustomMetricName,
  LEADER_NAME_DIMENSION,
  METRIC_BREAKDOWNS,
  VALUE_MISSING_REASONS,
} from '../metric-names.ts';

export interface ObservabilityProps {
  readonly leaderName: string;
  readonly metricsNamespace: string;
  /** How often the notify-check Lambda runs: the period of the metrics it emits. */
  readonly scheduleRate: Duration;
  readonly latencyP99ThresholdMs: number;
  /** Bound of ExpiryLagMs p99 (a tracked key's deadline -> its handler call), context `expiryLagAlarmMs`. */
  readonly expiryLagAlarmMs: number;
  /** E-mail subscribed to the alarm topic (it must confirm the subscription). */
  readonly alarmEmail?: string;
  readonly notifyFunction: lambda.IFunction;
  readonly workerLogGroup: logs.ILogGroup;
  readonly ecsClusterName: string;
  readonly ecsServiceName: string;
  /** ElastiCache member clusters (one node each), for per-node engine metrics. */
  readonly cacheMemberClusterIds: readonly string[];
}

/** Worker metrics are aggregated per minute: EMF flushes more often than that. */
const WORKER_PERIOD = Duration.minutes(1);
/** Handler failures and shed events: count over five minutes, page on the first one. */
const EVENT_ALARM_PERIOD = Duration.minutes(5);
/**
 * Value reads failing (ValuesMissing, Reason read-failed): in this many consecutive EVENT_ALARM_PERIODs.
 * A failover or a network blip fails the reads of a minute or two; failures through three periods are
 * a cause that stays (an access string without the capture commands, a primary that refuses the script).
 */
const VALUE_READ_FAILED_PERIODS = 3;

/** A graph of counts or gauges: its y axis starts at 0, so a flat line near the top is not read as a swing. */
function zeroBasedGraph(title: string, left: cw.IMetric[], width: number): cw.GraphWidget {
  return new cw.GraphWidget({ title, left, leftYAxis: { min: 0 }, width });
}

/** The operator's first screen (dashboard), the alarms and the encrypted SNS topic they notify. */
export class Observability extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly alarmTopic: sns.Topic;
  readonly alarmKey: kms.Key;
  readonly alarms: {
    readonly noLeader: cw.Alarm;
    readonly primaryNotVerified: cw.Alarm;
    readonly processingLatencyP99: cw.Alarm;
    readonly expiryLagP99: cw.Alarm;
    readonly handlerFailures: cw.Alarm;
    readonly eventsShed: cw.Alarm;
    readonly duplicateWorkerId: cw.Alarm;
    readonly configMismatch: cw.Alarm;
    readonly valueReadFailures: cw.Alarm;
    readonly lambdaErrors: cw.Alarm;
  };
  /** The dashboard's console URL (a token). */
  readonly dashboardUrl: string;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const checkPeriod = props.scheduleRate;

    const custom = (
      metricName: CustomMetricName,
      statistic: string,
      period: Duration,
      label?: string,
    ): cw.Metric =>
      new cw.Metric({
        namespace: props.metricsNamespace,
        metricName,
        dimensionsMap: { [LEADER_NAME_DIMENSION]: props.leaderName },
        statistic,
        period,
        ...(label === undefined ? {} : { label }),
      });

    /** ValuesMissing of one Reason (the breakdown's dimension; core/metrics.ts METRIC_BREAKDOWNS). */
    const valuesMissingFor = (
      reason: (typeof VALUE_MISSING_REASONS)[number],
      period: Duration,
      label?: string,
    ): cw.Metric =>
      new cw.Metric({
        namespace: props.metricsNamespace,
        metricName: 'ValuesMissing',
        dimensionsMap: {
          [LEADER_NAME_DIMENSION]: props.leaderName,
          [METRIC_BREAKDOWNS.ValuesMissing]: reason,
        },
        statistic: 'Sum',
        period,
        ...(label === undefined ? {} : { label }),
      });

    // --- SNS topic: encrypted with a customer managed key, because CloudWatch alarms cannot use the
    // AWS managed aws/sns key (its key policy cannot grant the CloudWatch service principal).
    this.alarmKey = new kms.Key(this, 'AlarmTopicKey', {
      description: 'keyspace-leader alarm topic encryption',
      enableKeyRotation: true,
      // It only encrypts notifications in flight: nothing to keep once the stack is gone.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    this.alarmKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `keyspace-leader alarms (${props.leaderName})`,
      masterKey: this.alarmKey,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
    const notify = new cwActions.SnsAction(this.alarmTopic);

    // --- Metrics.
    const leaderPresent = custom('LeaderPresent', 'Maximum', checkPeriod, 'leader present (Lambda)');
    const fencingToken = custom('FencingToken', 'Maximum', checkPeriod, 'fencing token');
    const primariesTotal = custom('PrimariesTotal', 'Maximum', checkPeriod, 'primaries');
    const primariesVerified = custom(
      'PrimariesVerified',
      'Minimum',
      checkPeriod,
      'primaries verified (canary)',
    );
    const eventsProcessed = custom('EventsProcessed', 'Sum', WORKER_PERIOD);
    const eventsReceived = custom('EventsReceived', 'Sum', WORKER_PERIOD);
    const latencyP50 = custom('ProcessingLatencyMs', 'p50', WORKER_PERIOD, 'p50');
    const latencyP99 = custom('ProcessingLatencyMs', 'p99', WORKER_PERIOD, 'p99');
    // On-time expiry: a tracked key's deadline -> its handler call (the leader's), and the index sizes.
    const expiryLagP50 = custom('ExpiryLagMs', 'p50', WORKER_PERIOD, 'deadline -> handler p50');
    const expiryLagP99 = custom('ExpiryLagMs', 'p99', WORKER_PERIOD, 'deadline -> handler p99');
    // How late the leader's renewals are confirmed: close to the renew deadline means a lease at risk.
    const renewLatencyMax = custom('LeaseRenewLatencyMs', 'Maximum', WORKER_PERIOD, 'lease renewal, max');
    const handlerFailures = custom('HandlerFailures', 'Sum', WORKER_PERIOD, 'handler failures');
    const eventsShed = custom('EventsShed', 'Sum', WORKER_PERIOD, 'events shed');
    const lambdaErrors = props.notifyFunction.metricErrors({ period: checkPeriod, statistic: 'Sum' });

    // --- Alarms.
    const withActions = (alarm: cw.Alarm): cw.Alarm => {
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
      return alarm;
    };
    this.alarms = {
      noLeader: withActions(
        new cw.Alarm(this, 'NoLeaderAlarm', {
          alarmDescription:
            'No leader for two consecutive notify-check runs (LeaderPresent < 1). Missing data counts as ' +
            'breaching: a check that does not report cannot vouch for a leader.',
          metric: leaderPresent,
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 2,
          datapointsToAlarm: 2,
          treatMissingData: cw.TreatMissingData.BREACHING,
        }),
      ),
      primaryNotVerified: withActions(
        new cw.Alarm(this, 'PrimaryNotVerifiedAlarm', {
          alarmDescription:
            'A primary did not deliver its canary expiry event (PrimariesVerified < PrimariesTotal) in two ' +
            'consecutive checks: expired events from that shard are probably being lost.',
          metric: new cw.MathExpression({
            expression: 'total - verified',
            usingMetrics: { total: primariesTotal, verified: primariesVerified },
            label: 'primaries not verified',
            period: checkPeriod,
          }),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 2,
          datapointsToAlarm: 2,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      processingLatencyP99: withActions(
        new cw.Alarm(this, 'ProcessingLatencyP99Alarm', {
          alarmDescription: `Processing latency p99 above ${props.latencyP99ThresholdMs} ms for three consecutive minutes.`,
          metric: latencyP99,
          threshold: props.latencyP99ThresholdMs,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 3,
          datapointsToAlarm: 3,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      expiryLagP99: withActions(
        new cw.Alarm(this, 'ExpiryLagP99Alarm', {
          alarmDescription:
            `Expiry lag p99 (a tracked key's deadline -> its handler call) above ${props.expiryLagAlarmMs} ms for ` +
            'three consecutive minutes: keys are handled late (a primary left to native expiry, a slow handler, ' +
            'or the leader falling behind; see expiry.* logs and NativeExpiryPrimaries).',
          metric: expiryLagP99,
          threshold: props.expiryLagAlarmMs,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 3,
          datapointsToAlarm: 3,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      handlerFailures: withActions(
        new cw.Alarm(this, 'HandlerFailuresAlarm', {
          alarmDescription:
            'The expiry handler failed at least once in five minutes (see handler.failed logs).',
          metric: custom('HandlerFailures', 'Sum', EVENT_ALARM_PERIOD),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      eventsShed: withActions(
        new cw.Alarm(this, 'EventsShedAlarm', {
          alarmDescription:
            'The leader shed expiry events (overload) at least once in five minutes (see events.shed logs).',
          metric: custom('EventsShed', 'Sum', EVENT_ALARM_PERIOD),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      duplicateWorkerId: withActions(
        new cw.Alarm(this, 'DuplicateWorkerIdAlarm', {
          alarmDescription:
            'Two running workers share one WORKER_ID (DuplicateWorkerId = 1 on the later one, which stands by ' +
            'and does not compete): give each worker its own WORKER_ID or leave it unset (see worker.duplicate_id logs).',
          metric: custom('DuplicateWorkerId', 'Maximum', WORKER_PERIOD),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      configMismatch: withActions(
        new cw.Alarm(this, 'ConfigMismatchAlarm', {
          alarmDescription:
            'Workers of this LEADER_NAME have run with different KEY_PATTERN or HANDLER for longer than a deploy ' +
            "overlaps old and new tasks (150 s): only the leader's configuration handles events. Two services on " +
            'one LEADER_NAME? Give each its own (see config.mismatch logs).',
          metric: custom('ConfigMismatch', 'Maximum', WORKER_PERIOD),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      valueReadFailures: withActions(
        new cw.Alarm(this, 'ValueReadFailuresAlarm', {
          alarmDescription:
            `Value capture: reads of expiring keys' values failed in ${VALUE_READ_FAILED_PERIODS} consecutive ` +
            'five-minute periods (ValuesMissing, Reason read-failed): handlers get their events without values. ' +
            'A failover fails a minute or two of reads; this lasts: check the worker access string (the ' +
            'value-read commands), the primaries (CLUSTERDOWN, timeouts) and values.missing logs.',
          metric: valuesMissingFor('read-failed', EVENT_ALARM_PERIOD),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: VALUE_READ_FAILED_PERIODS,
          datapointsToAlarm: VALUE_READ_FAILED_PERIODS,
          // A Reason is written only in a period it was counted in: no data is no failure.
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
      lambdaErrors: withActions(
        new cw.Alarm(this, 'NotifyCheckErrorsAlarm', {
          alarmDescription:
            'The notify-check Lambda failed in two of the last three runs (one failure during a cache failover is expected).',
          metric: lambdaErrors,
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      ),
    };

    // --- Dashboard.
    // Math ids must be unique within one graph: each rate names its own input.
    const perSecond = (id: string, metric: cw.Metric, label: string): cw.MathExpression =>
      new cw.MathExpression({
        expression: `${id} / PERIOD(${id})`,
        usingMetrics: { [id]: metric },
        label,
        period: WORKER_PERIOD,
      });
    const cache = (metricName: string, statistic: string): cw.Metric[] =>
      props.cacheMemberClusterIds.map(
        (clusterId, index) =>
          new cw.Metric({
            namespace: 'AWS/ElastiCache',
            metricName,
            dimensionsMap: { CacheClusterId: clusterId },
            statistic,
            period: Duration.minutes(1),
            label: `member ${index + 1}`,
          }),
      );

    const dashboardName = `${Aws.STACK_NAME}-${Aws.REGION}`;
    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName,
      defaultInterval: Duration.hours(3),
    });
    this.dashboardUrl = `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards/dashboard/${dashboardName}`;

    this.dashboard.addWidgets(
      new cw.TextWidget({
        markdown: [
          `## keyspace-leader \`${props.leaderName}\``,
          'Healthy: **LeaderPresent = 1**, **IsLeader (sum) = 1**, **PrimariesVerified = PrimariesTotal**, ' +
            `**expiry lag p99 < ${props.expiryLagAlarmMs} ms**, NativeExpiryPrimaries = 0, ` +
            'SubscribedPrimaries (min over workers) = PrimariesTotal, EventsShed and HandlerFailures = 0, ' +
            'ValuesMissing read-failed = 0. ' +
            'A rising fencing token means leadership changed hands.',
        ].join('\n\n'),
        width: 8,
        height: 6,
      }),
      new cw.GraphWidget({
        title: "Expiry lag: a key's deadline -> its handler call (ms)",
        left: [expiryLagP50, expiryLagP99],
        leftYAxis: { min: 0 },
        leftAnnotations: [{ value: props.expiryLagAlarmMs, label: 'p99 alarm threshold' }],
        width: 8,
        height: 6,
      }),
      new cw.AlarmStatusWidget({
        title: 'Alarms',
        alarms: Object.values(this.alarms),
        width: 8,
        height: 6,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Leader present and fencing token',
        left: [
          leaderPresent,
          custom('IsLeader', 'Sum', WORKER_PERIOD, 'workers claiming leadership (sum of IsLeader)'),
        ],
        right: [fencingToken],
        leftYAxis: { min: 0 },
        leftAnnotations: [{ value: 1, label: 'exactly one leader' }],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Leader changes',
        left: [
          new cw.MathExpression({
            expression: 'IF(DIFF(token) > 0, DIFF(token), 0)',
            usingMetrics: { token: custom('FencingToken', 'Maximum', checkPeriod) },
            label: 'leader changes (fencing token increments)',
            period: checkPeriod,
          }),
        ],
        right: [custom('LeaderAgeSeconds', 'Maximum', checkPeriod, 'leader age (s)')],
        leftYAxis: { min: 0 },
        width: 8,
      }),
      zeroBasedGraph(
        'Workers running',
        [
          custom('WorkersRunning', 'Maximum', checkPeriod, 'workers running (ECS, by Lambda)'),
          custom('LeaderTaskRunning', 'Minimum', checkPeriod, 'leader task running'),
          new cw.Metric({
            namespace: 'ECS/ContainerInsights',
            metricName: 'RunningTaskCount',
            dimensionsMap: { ClusterName: props.ecsClusterName, ServiceName: props.ecsServiceName },
            statistic: 'Average',
            period: Duration.minutes(1),
            label: 'running tasks (Container Insights)',
          }),
        ],
        8,
      ),
    );
    this.dashboard.addWidgets(
      zeroBasedGraph(
        'Events per second',
        [
          perSecond('received', eventsReceived, 'received/s (all workers)'),
          perSecond('processed', eventsProcessed, 'processed/s (leader)'),
        ],
        8,
      ),
      new cw.GraphWidget({
        title: 'Processing latency and lease renewal latency (ms)',
        left: [latencyP50, latencyP99],
        leftYAxis: { min: 0 },
        right: [renewLatencyMax],
        rightYAxis: { min: 0 },
        leftAnnotations: [{ value: props.latencyP99ThresholdMs, label: 'p99 alarm threshold' }],
        width: 8,
      }),
      zeroBasedGraph('Handler failures and events shed', [handlerFailures, eventsShed], 8),
    );
    this.dashboard.addWidgets(
      zeroBasedGraph(
        'On-time expiry: keys in the deadline index',
        [
          custom('TrackedKeys', 'Maximum', WORKER_PERIOD, 'tracked keys (fullest worker)'),
          custom('TrackedKeys', 'Minimum', WORKER_PERIOD, 'tracked keys (emptiest worker)'),
        ],
        12,
      ),
      zeroBasedGraph(
        'On-time expiry: primaries left to native (late) expiry (0 when healthy)',
        [
          custom(
            'NativeExpiryPrimaries',
            'Maximum',
            WORKER_PERIOD,
            'primaries without on-time expiry (worst worker)',
          ),
        ],
        12,
      ),
    );
    this.dashboard.addWidgets(
      zeroBasedGraph(
        'Values (CAPTURE_VALUES): handler calls with and without the value, held values released',
        [
          custom('ValuesCaptured', 'Sum', WORKER_PERIOD, 'calls with the value'),
          custom('ValuesMissing', 'Sum', WORKER_PERIOD, 'calls without it (all reasons)'),
          custom('ValuesReleased', 'Sum', WORKER_PERIOD, 'held values released (event never came)'),
        ],
        8,
      ),
      zeroBasedGraph(
        'Values missing by reason (over-budget, read-late, read-failed: this system fell short)',
        VALUE_MISSING_REASONS.map((reason) => valuesMissingFor(reason, WORKER_PERIOD, reason)),
        8,
      ),
      new cw.GraphWidget({
        title: 'Held value bytes (the leader): held values + reads in flight, within VALUE_BUDGET_BYTES',
        left: [custom('HeldValueBytes', 'Maximum', WORKER_PERIOD, 'held + reserved bytes (fullest worker)')],
        leftYAxis: { min: 0 },
        // The stack leaves VALUE_BUDGET_BYTES at the worker's default.
        leftAnnotations: [
          { value: VALUE_CAPTURE_DEFAULTS.valueBudgetBytes, label: 'VALUE_BUDGET_BYTES (default)' },
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      zeroBasedGraph(
        'Outbox (HANDLER=stream): unconfirmed appends, unread entries trimmed',
        [
          custom(
            'OutboxAppendsUnconfirmed',
            'Sum',
            WORKER_PERIOD,
            'appends no replica confirmed (left unsettled)',
          ),
          custom('OutboxAppendsUnreplicated', 'Sum', WORKER_PERIOD, 'appends settled without a replica'),
          custom(
            'OutboxEntriesTrimmedUnread',
            'Sum',
            WORKER_PERIOD,
            'entries trimmed before a group read them',
          ),
        ],
        8,
      ),
    );
    this.dashboard.addWidgets(
      zeroBasedGraph(
        'Primaries subscribed and verified',
        [
          primariesTotal,
          primariesVerified,
          custom('SubscribedPrimaries', 'Minimum', WORKER_PERIOD, 'subscribed (worst worker)'),
          custom('SubscribedPrimaries', 'Maximum', WORKER_PERIOD, 'subscribed (best worker)'),
        ],
        8,
      ),
      zeroBasedGraph(
        'notify-keyspace-events configuration',
        [
          custom('NodesConfigured', 'Minimum', checkPeriod, 'nodes configured'),
          custom('NodesDrifted', 'Maximum', checkPeriod, 'nodes drifted (repaired)'),
        ],
        8,
      ),
      new cw.GraphWidget({
        title: 'notify-check Lambda',
        left: [
          props.notifyFunction.metricErrors({ period: checkPeriod, statistic: 'Sum', label: 'errors' }),
          props.notifyFunction.metricInvocations({
            period: checkPeriod,
            statistic: 'Sum',
            label: 'invocations',
          }),
        ],
        right: [
          props.notifyFunction.metricDuration({
            period: checkPeriod,
            statistic: 'p50',
            label: 'duration p50',
          }),
          props.notifyFunction.metricDuration({
            period: checkPeriod,
            statistic: 'Maximum',
            label: 'duration max',
          }),
        ],
        leftYAxis: { min: 0 },
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      zeroBasedGraph(
        'ElastiCache EngineCPUUtilization (%) per node',
        cache('EngineCPUUtilization', 'Average'),
        8,
      ),
      zeroBasedGraph('ElastiCache Reclaimed (expired keys) per node', cache('Reclaimed', 'Sum'), 8),
      zeroBasedGraph('ElastiCache CurrConnections per node', cache('CurrConnections', 'Maximum'), 8),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Identity mistakes (0 when healthy)',
        left: [
          custom(
            'DuplicateWorkerId',
            'Maximum',
            WORKER_PERIOD,
            'a worker standing by: its WORKER_ID is taken',
          ),
          custom('ConfigMismatch', 'Maximum', WORKER_PERIOD, 'KEY_PATTERN/HANDLER differ beyond a deploy'),
        ],
        leftYAxis: { min: 0, max: 1 },
        width: 24,
        height: 4,
      }),
    );
    this.dashboard.addWidgets(
      new cw.LogQueryWidget({
        title: 'Leader events (worker logs)',
        logGroupNames: [props.workerLogGroup.logGroupName],
        queryLines: [
          'fields @timestamp, event, workerId, fencingToken, reason',
          'filter event like /^leader\\./',
          'sort @timestamp desc',
          'limit 100',
        ],
        view: cw.LogQueryVisualizationType.TABLE,
        width: 24,
        height: 8,
      }),
    );
  }
}
