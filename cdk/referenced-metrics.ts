/**
 * Lists every CloudWatch metric the synthesized template's dashboards and alarms reference, read
 * from the template itself (what gets deployed), so a test can compare it with the metrics the
 * worker and the Lambda emit (core/metrics.ts) and with cdk/metric-names.ts.
 *
 * Usage: `referencedMetrics(Template.fromStack(stack).toJSON())`.
 */
import { flattenCfnValue } from './nag.ts';

export interface ReferencedMetric {
  readonly namespace: string;
  readonly metricName: string;
  /** Dimension name -> value; values that are CloudFormation tokens appear as `<LogicalId>`. */
  readonly dimensions: Readonly<Record<string, string>>;
  /** Logical ids of the dashboards and alarms that reference it. */
  readonly referencedBy: readonly string[];
}

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

interface CfnTemplate {
  readonly Resources?: Record<string, CfnResource>;
}

interface CfnDimension {
  readonly Name: string;
  readonly Value: unknown;
}

function dimensionsOf(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(list)) return out;
  for (const d of list as CfnDimension[]) out[d.Name] = flattenCfnValue(d.Value);
  return out;
}

/**
 * A dashboard body is `Fn::Join` of JSON text and tokens; the tokens sit inside JSON strings, so each
 * one becomes `<LogicalId>` (no quotes or braces) and the text stays parseable.
 */
function dashboardBody(body: unknown): {
  widgets?: { type?: string; properties?: { metrics?: unknown[] } }[];
} {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else {
    const join = (body as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (join === undefined) throw new Error('DashboardBody is neither a string nor Fn::Join');
    text = join[1].map((part) => (typeof part === 'string' ? part : flattenCfnValue(part))).join(join[0]);
  }
  return JSON.parse(text);
}

/** Rows are `[namespace, name, dim1, val1, ..., {options}?]`; `.` repeats the previous row's item. */
function metricsOfDashboardRows(rows: unknown[]): Omit<ReferencedMetric, 'referencedBy'>[] {
  const out: Omit<ReferencedMetric, 'referencedBy'>[] = [];
  let previous: unknown[] = [];
  for (const row of rows) {
    if (!Array.isArray(row) || typeof row[0] !== 'string') continue; // math expression row
    const items = row
      .filter((item) => typeof item === 'string')
      .map((item, i) => (item === '.' ? previous[i] : item));
    previous = items;
    const [namespace, metricName, ...pairs] = items as string[];
    if (namespace === undefined || metricName === undefined) continue;
    const dimensions: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) dimensions[pairs[i] as string] = pairs[i + 1] as string;
    out.push({ namespace, metricName, dimensions });
  }
  return out;
}

function metricsOfAlarm(props: Record<string, unknown>): Omit<ReferencedMetric, 'referencedBy'>[] {
  if (typeof props.MetricName === 'string' && typeof props.Namespace === 'string') {
    return [
      {
        namespace: props.Namespace,
        metricName: props.MetricName,
        dimensions: dimensionsOf(props.Dimensions),
      },
    ];
  }
  const out: Omit<ReferencedMetric, 'referencedBy'>[] = [];
  for (const query of (props.Metrics as
    | { MetricStat?: { Metric?: Record<string, unknown> } }[]
    | undefined) ?? []) {
    const metric = query.MetricStat?.Metric;
    if (metric === undefined) continue;
    out.push({
      namespace: String(metric.Namespace),
      metricName: String(metric.MetricName),
      dimensions: dimensionsOf(metric.Dimensions),
    });
  }
  return out;
}

/** Every (namespace, metric name, dimensions) used by the template's dashboards and alarms, deduplicated. */
export function referencedMetrics(template: CfnTemplate): ReferencedMetric[] {
  const byKey = new Map<
    string,
    { metric: Omit<ReferencedMetric, 'referencedBy'>; referencedBy: Set<string> }
  >();
  const add = (logicalId: string, metric: Omit<ReferencedMetric, 'referencedBy'>): void => {
    const sortedDimensions = Object.fromEntries(
      Object.entries(metric.dimensions).sort(([a], [b]) => a.localeCompare(b)),
    );
    const key = JSON.stringify([metric.namespace, metric.metricName, sortedDimensions]);
    const entry = byKey.get(key) ?? {
      metric: { ...metric, dimensions: sortedDimensions },
      referencedBy: new Set(),
    };
    entry.referencedBy.add(logicalId);
    byKey.set(key, entry);
  };
  for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
    if (resource.Type === 'AWS::CloudWatch::Dashboard') {
      for (const widget of dashboardBody(resource.Properties?.DashboardBody).widgets ?? []) {
        if (widget.type !== 'metric') continue;
        for (const metric of metricsOfDashboardRows(widget.properties?.metrics ?? [])) add(logicalId, metric);
      }
    } else if (resource.Type === 'AWS::CloudWatch::Alarm') {
      for (const metric of metricsOfAlarm(resource.Properties ?? {})) add(logicalId, metric);
    }
  }
  return [...byKey.values()]
    .map(({ metric, referencedBy }) => ({ ...metric, referencedBy: [...referencedBy].sort() }))
    .sort((a, b) => `${a.namespace}/${a.metricName}`.localeCompare(`${b.namespace}/${b.metricName}`));
}
