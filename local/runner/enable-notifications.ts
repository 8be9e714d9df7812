import { parseReportConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { EmfMetrics } from '../../core/metrics.ts';
import { runNotifyCheck } from '../../lambdas/notify-check/notify-check.ts';
import type { NotifyCheckReport } from '../../lambdas/notify-check/report.ts';

/**
 * Enables `notify-keyspace-events` on every node of the local cluster the way production does: one
 * run of the scheduled Lambda's logic (lambdas/notify-check, NOTIFY_MODE=config), which merges the
 * flags in with CONFIG SET on every node (`Egx`: precise expiry is on by default, PRECISE_EXPIRY) and
 * proves with a canary per primary that `expired` (and `expire`) events flow. Returns a few lines for the person watching. When the check cannot run at all, falls back to
 * a plain CONFIG SET on every node (`fallback`), and says so. With `connection` (`--tls`) the check
 * runs as it does in production: over TLS, as its own ACL user (with CONFIG rights here).
 */

/** What the fallback sets: `expired` and `expire` events (precise expiry, on by default). */
export const FALLBACK_NOTIFY_FLAGS = 'Egx';

export interface NotificationSetup {
  readonly ok: boolean;
  readonly lines: readonly string[];
  readonly report: NotifyCheckReport | undefined;
}

export interface EnableNotificationsDeps {
  readonly seeds: readonly { host: string; port: number }[];
  readonly leaderName: string;
  /** TLS and the check's ACL user (`npm start -- --tls`); unset: plain text, default user. */
  readonly connection?: NotifyCheckConnection;
  readonly logger: Logger;
  /** CONFIG SET on every node (LocalRedisCluster.configSetAll). */
  readonly fallback: (name: string, value: string) => Promise<void>;
}

export interface NotifyCheckConnection {
  readonly tlsCaFile: string;
  readonly username: string;
  /** Secret: given to the check's configuration only, never printed. */
  readonly password: string;
}

export function summarizeReport(report: NotifyCheckReport): string[] {
  const configured = report.nodes.filter((n) => n.configured).length;
  const changed = report.nodes.filter((n) => n.status === 'repaired').length;
  const verified = report.canaries.filter((c) => c.verified);
  const latencies = verified.map((c) => c.latencyMs).filter((l): l is number => l !== null);
  const expireFlows = report.canaries.filter((c) => c.expireEventsFlow === true).length;
  const lines = [
    `notify-check (the Lambda's logic, run once): notify-keyspace-events set on ${configured}/${report.nodes.length} nodes ` +
      `(${changed} changed, now "${report.nodes[0]?.after ?? '?'}"); canary verified on ${verified.length}/${report.canaries.length} primaries` +
      (latencies.length > 0 ? ` (${Math.min(...latencies)}-${Math.max(...latencies)} ms)` : '') +
      (report.preciseExpiry ? `; expire events on ${expireFlows}/${report.canaries.length} primaries` : '') +
      `; ${report.durationMs} ms`,
  ];
  for (const problem of report.problems) {
    // Before the workers start there is no leader yet: expected, not a problem of this setup.
    if (report.leader.state !== 'leading' && problem === report.leader.summary) continue;
    lines.push(`  problem: ${problem}`);
  }
  return lines;
}

export async function enableNotifications(deps: EnableNotificationsDeps): Promise<NotificationSetup> {
  try {
    const config = parseReportConfig({
      REDIS_NODES: deps.seeds.map((s) => `${s.host}:${s.port}`).join(','),
      LEADER_NAME: deps.leaderName,
      NOTIFY_MODE: 'config',
      LOG_LEVEL: 'warn',
      ...(deps.connection
        ? {
            REDIS_TLS: 'true',
            REDIS_TLS_CA_FILE: deps.connection.tlsCaFile,
            REDIS_USERNAME: deps.connection.username,
            REDIS_PASSWORD: deps.connection.password,
          }
        : {}),
    });
    const report = await runNotifyCheck({
      config,
      logger: deps.logger,
      // The Lambda's metrics mean nothing here: dropped.
      metrics: new EmfMetrics({
        namespace: config.metricsNamespace,
        leaderName: config.leaderName,
        write: () => {},
      }),
    });
    const allConfigured = report.nodes.every((n) => n.configured);
    const allVerified = report.canaries.every((c) => c.verified);
    return { ok: allConfigured && allVerified, lines: summarizeReport(report), report };
  } catch (error) {
    await deps.fallback('notify-keyspace-events', FALLBACK_NOTIFY_FLAGS);
    return {
      ok: true,
      lines: [
        `notify-check could not run (${error instanceof Error ? error.message : String(error)}); ` +
          `set notify-keyspace-events "${FALLBACK_NOTIFY_FLAGS}" on every node with CONFIG SET instead`,
      ],
      report: undefined,
    };
  }
}
