import { classifyRedisRefusal } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { type ClusterNode, nodeAddress } from '../../core/topology.ts';
import { describeError } from './errors.ts';
import { hasRequiredNotifyFlags, mergeNotifyFlags } from './notify-flags.ts';
import type { NodePool } from './redis-nodes.ts';
import type { NodeReport } from './report.ts';

export const NOTIFY_PARAMETER = 'notify-keyspace-events';

export interface ConfigEnforcement {
  readonly report: NodeReport;
  /** Set when the node refused CONFIG (restricted/unknown command or ACL): the caller may fall back. */
  readonly refusal: 'noperm' | 'unknown-command' | undefined;
}

export interface ConfigEnforcementOptions {
  readonly pool: NodePool;
  /** Bound of one step (connect, one command), already cut to the run's budget. */
  readonly stepTimeoutMs: () => number;
  /** PRECISE_EXPIRY: the flags enforced (notify-flags.ts requiredNotifyFlags). */
  readonly preciseExpiry: boolean;
  readonly logger: Logger;
}

/** The value of one parameter in a CONFIG GET reply (RESP2 flat array, RESP3 map or object). */
export function configValueOf(reply: unknown, name: string): string | undefined {
  const text = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) if (text(reply[i]) === name) return text(reply[i + 1]);
    return undefined;
  }
  if (reply instanceof Map) {
    for (const [k, v] of reply) if (text(k) === name) return text(v);
    return undefined;
  }
  if (reply !== null && typeof reply === 'object' && name in reply)
    return text((reply as Record<string, unknown>)[name]);
  return undefined;
}

function base(node: ClusterNode): Pick<NodeReport, 'address' | 'id' | 'role' | 'health'> {
  return { address: nodeAddress(node), id: node.id, role: node.role, health: node.health };
}

/**
 * CONFIG GET on the node; when a required flag is missing (`E`, `x`, and `g` with precise expiry), CONFIG SET of the merged value (existing flags
 * kept) and a read-back. A node that has the flags is left alone. Concurrent runs write the same
 * merged value, so they are harmless to each other; a change by somebody else between our GET and SET
 * could be overwritten (CONFIG has no compare-and-set), the read-back keeps that window small.
 * Never throws: every failure is in the returned report.
 */
export async function enforceByConfig(
  node: ClusterNode,
  options: ConfigEnforcementOptions,
): Promise<ConfigEnforcement> {
  const address = nodeAddress(node);
  const log = options.logger.child({ node: address, role: node.role });
  let connection: Awaited<ReturnType<NodePool['get']>>;
  try {
    connection = await options.pool.get(node, options.stepTimeoutMs());
  } catch (error) {
    log.warn('notify.node_unreachable', { error });
    return {
      refusal: undefined,
      report: {
        ...base(node),
        method: 'config',
        status: 'unreachable',
        before: null,
        after: null,
        drifted: false,
        configured: false,
        error: describeError(error),
      },
    };
  }

  let before: string | null = null;
  let drifted = false;
  try {
    before =
      configValueOf(
        await connection.call('CONFIG', ['GET', NOTIFY_PARAMETER], options.stepTimeoutMs()),
        NOTIFY_PARAMETER,
      ) ?? '';
    const merge = mergeNotifyFlags(before, options.preciseExpiry);
    if (!merge.changed) {
      log.debug('notify.node_ok', { value: before });
      return {
        refusal: undefined,
        report: {
          ...base(node),
          method: 'config',
          status: 'ok',
          before,
          after: before,
          drifted: false,
          configured: true,
          error: null,
        },
      };
    }
    drifted = true;
    await connection.call('CONFIG', ['SET', NOTIFY_PARAMETER, merge.merged], options.stepTimeoutMs());
    const after =
      configValueOf(
        await connection.call('CONFIG', ['GET', NOTIFY_PARAMETER], options.stepTimeoutMs()),
        NOTIFY_PARAMETER,
      ) ?? '';
    const configured = hasRequiredNotifyFlags(after, options.preciseExpiry);
    if (configured) log.info('notify.node_repaired', { before, after, added: merge.missing });
    else log.warn('notify.node_failed', { before, after, reason: 'read-back lacks the required flags' });
    return {
      refusal: undefined,
      report: {
        ...base(node),
        method: 'config',
        status: configured ? 'repaired' : 'failed',
        before,
        after,
        drifted,
        configured,
        error: configured
          ? null
          : `CONFIG SET ${merge.merged} was accepted but the node reads back "${after}"`,
      },
    };
  } catch (error) {
    const refusal = classifyRedisRefusal(error);
    if (refusal) log.warn('notify.node_refused', { refusal, error });
    else log.warn('notify.node_failed', { error });
    return {
      refusal,
      report: {
        ...base(node),
        method: 'config',
        status: refusal ? 'refused' : 'failed',
        before,
        after: null,
        drifted,
        configured: false,
        error: describeError(error),
      },
    };
  }
}
