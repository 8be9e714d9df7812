import { FAMILY_KEY_KINDS, KeyspaceKeys, type OwnKeyClass } from '../../core/keys.ts';
import type { LocalRedisCluster } from '../cluster.ts';
import { queryNode } from './node-query.ts';

/**
 * Which primaries hold the keys of one LEADER_NAME right now: SCAN on every primary for
 * `KeyspaceKeys.scanPattern`, each match recognised by `KeyspaceKeys.classify` (core/keys.ts, the one
 * place that knows the layout): the quorum lease members and their epochs, the single-key lease, the
 * family keys (leader record, epoch, coverage), the processed marks kept beside each member. A primary
 * that does not answer is listed with no keys and `answered: false`.
 */

export interface PrimaryHolding {
  readonly port: number;
  readonly address: string;
  readonly answered: boolean;
  /** Every key of the leader name on it (classified ones only). */
  readonly keys: readonly string[];
  /** The subset that are lease keys (the single-key lease or a quorum member). */
  readonly leaseKeys: readonly string[];
}

const SCAN_COUNT = 1000;

function classOf(key: string, leaderName: string): OwnKeyClass | undefined {
  return new KeyspaceKeys(leaderName).classify(key);
}

/** A processed mark (`KeyspaceKeys.processedMark`) of this leader name. */
export function isProcessedMark(key: string, leaderName: string): boolean {
  return classOf(key, leaderName)?.kind === 'processed-mark';
}

/** A key under the family tag `{kl:<name>}` (single-key lease, epoch, leader record, coverage). */
export function isFamilyKey(key: string, leaderName: string): boolean {
  const kind = classOf(key, leaderName)?.kind;
  return kind !== undefined && FAMILY_KEY_KINDS.has(kind);
}

/** The single-key lease or a quorum lease member of this leader name. */
export function isLeaseKey(key: string, leaderName: string): boolean {
  const kind = classOf(key, leaderName)?.kind;
  return kind === 'lease' || kind === 'quorum-lease';
}

/** A short account of what a primary holds, e.g. `lease member(s) p11; family keys leader, epoch; 4 processed mark(s)`. */
export function describeHolding(holding: PrimaryHolding, leaderName: string): string {
  if (holding.keys.length === 0) return 'no key of the lease family';
  const keys = new KeyspaceKeys(leaderName);
  const classes = holding.keys.map((key) => keys.classify(key));
  const members = classes.flatMap((c) =>
    c?.kind === 'quorum-lease' ? [`p${c.partitionIndex}`] : c?.kind === 'lease' ? ['single-key'] : [],
  );
  const parts = [members.length > 0 ? `lease member(s) ${members.join(', ')}` : 'no lease key'];
  const family = classes.flatMap((c) => (c && FAMILY_KEY_KINDS.has(c.kind) ? [c.kind] : []));
  if (family.length > 0) parts.push(`family keys ${family.join(', ')}`);
  const marks = classes.filter((c) => c?.kind === 'processed-mark').length;
  if (marks > 0) parts.push(`${marks} processed mark(s)`);
  return parts.join('; ');
}

/**
 * The lease member hardest to lose (kill-lease-primary): one that holds processed marks and the family
 * keys (a new leader then reads the epoch floor, the record and the marks from the promoted replica),
 * else one with marks, else one with the family keys, else any member. Undefined when no primary holds
 * a lease key.
 */
export function hardestLeaseMember(
  holders: readonly PrimaryHolding[],
  leaderName: string,
): PrimaryHolding | undefined {
  const members = holders.filter((h) => h.leaseKeys.length > 0);
  const hasMarks = (h: PrimaryHolding) => h.keys.some((k) => isProcessedMark(k, leaderName));
  const hasFamily = (h: PrimaryHolding) => h.keys.some((k) => isFamilyKey(k, leaderName));
  return (
    members.find((h) => hasMarks(h) && hasFamily(h)) ??
    members.find(hasMarks) ??
    members.find(hasFamily) ??
    members[0]
  );
}

/**
 * A primary that only publishes (kill-publishing-primary): one that answered and holds no key of the
 * leader name, else one without a lease key or a processed mark, else one without a lease key.
 */
export function publishingOnlyPrimary(
  holders: readonly PrimaryHolding[],
  leaderName: string,
): PrimaryHolding | undefined {
  const answered = holders.filter((h) => h.answered);
  return (
    answered.find((h) => h.keys.length === 0) ??
    answered.find((h) => h.leaseKeys.length === 0 && !h.keys.some((k) => isProcessedMark(k, leaderName))) ??
    answered.find((h) => h.leaseKeys.length === 0)
  );
}

export async function findLeaseHolders(
  cluster: LocalRedisCluster,
  leaderName: string,
): Promise<PrimaryHolding[]> {
  const keyspaceKeys = new KeyspaceKeys(leaderName);
  const primaries = await cluster.primaries();
  return Promise.all(
    primaries.map(async (primary): Promise<PrimaryHolding> => {
      const address = `${primary.host}:${primary.port}`;
      try {
        const keys = (await scanAll(cluster, primary.port, keyspaceKeys.scanPattern)).filter(
          (key) => keyspaceKeys.classify(key) !== undefined,
        );
        return {
          port: primary.port,
          address,
          answered: true,
          keys,
          leaseKeys: keys.filter((key) => isLeaseKey(key, leaderName)),
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
