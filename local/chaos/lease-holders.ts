import type { LocalRedisCluster } from '../cluster.ts';
import { queryNode } from './node-query.ts';

/**
 * Which primaries hold the lease family's keys of one LEADER_NAME right now: SCAN on every primary
 * for `{kl:<name>*` (the lease members `{kl:<name>:p<i>}:lease` and epochs, the single-key lease
 * `{kl:<name>}:lease`, the leader record). A primary that does not answer is listed with no keys and
 * `answered: false`.
 */

export interface PrimaryHolding {
  readonly port: number;
  readonly address: string;
  readonly answered: boolean;
  /** Every `{kl:<name>...` key on it. */
  readonly keys: readonly string[];
  /** The subset that are lease keys (`...:lease`). */
  readonly leaseKeys: readonly string[];
}

const SCAN_COUNT = 1000;

/** `{kl:<name>:m}:processed:<nodeId>`: the leader's processed marks (worker/replay/). */
export function isProcessedMark(key: string, leaderName: string): boolean {
  return key.startsWith(`{kl:${leaderName}:m}:processed:`);
}

/** Keys under the family tag `{kl:<name>}` (leader record, family epoch, coverage registry, ...). */
export function isFamilyKey(key: string, leaderName: string): boolean {
  return key.startsWith(`{kl:${leaderName}}`);
}

/** A short account of what a primary holds, e.g. `lease p11 (+ epoch), leader record..., 4 processed marks`. */
export function describeHolding(holding: PrimaryHolding, leaderName: string): string {
  if (holding.keys.length === 0) return 'no key of the lease family';
  const prefix = `{kl:${leaderName}`;
  const parts: string[] = [];
  const members = holding.leaseKeys.map((key) =>
    key
      .slice(prefix.length)
      .replace(/}:lease$/, '')
      .replace(/^:/, ''),
  );
  parts.push(
    members.length > 0
      ? `lease member(s) ${members.map((m) => m || 'single-key').join(', ')}`
      : 'no lease key',
  );
  const family = holding.keys
    .filter((key) => isFamilyKey(key, leaderName))
    .map((key) => key.slice(prefix.length + 2));
  if (family.length > 0) parts.push(`family keys ${family.join(', ')}`);
  const marks = holding.keys.filter((key) => isProcessedMark(key, leaderName)).length;
  if (marks > 0) parts.push(`${marks} processed mark(s)`);
  return parts.join('; ');
}

export async function findLeaseHolders(
  cluster: LocalRedisCluster,
  leaderName: string,
): Promise<PrimaryHolding[]> {
  const primaries = await cluster.primaries();
  return Promise.all(
    primaries.map(async (primary): Promise<PrimaryHolding> => {
      const address = `${primary.host}:${primary.port}`;
      try {
        const keys = await scanAll(cluster, primary.port, `{kl:${leaderName}*`);
        return {
          port: primary.port,
          address,
          answered: true,
          keys,
          leaseKeys: keys.filter((key) => key.endsWith(':lease')),
        };
      } catch {
        return { port: primary.port, address, answered: false, keys: [], leaseKeys: [] };
      }
    }),
  );
}

async function scanAll(cluster: LocalRedisCluster, port: number, match: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const reply = (await queryNode(cluster, port, ['SCAN', cursor, 'MATCH', match, 'COUNT', SCAN_COUNT])) as [
      string,
      string[],
    ];
    cursor = String(reply[0]);
    keys.push(...reply[1].map(String));
  } while (cursor !== '0');
  return keys.sort();
}
