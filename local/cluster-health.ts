import { type ClusterNodesLine, type NodeRole, parseClusterNodesLines } from '../core/topology.ts';
import { slotCoverage } from './slot-ranges.ts';

/**
 * Pure parsing of CLUSTER NODES / INFO text and the health rule the local cluster waits for. No I/O
 * here, so the rule is unit-tested on recorded replies.
 */

export type LocalNodeRole = NodeRole;

/** One line of CLUSTER NODES: core's line parser, shared with the worker's topology fallback. */
export type ClusterNodeEntry = ClusterNodesLine;
export const parseClusterNodes = parseClusterNodesLines;

/** `key:value` lines of INFO / CLUSTER INFO (sections and blank lines skipped). */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const colon = trimmed.indexOf(':');
    if (colon > 0) fields.set(trimmed.slice(0, colon), trimmed.slice(colon + 1));
  }
  return fields;
}

/** What one running node reported in one poll. */
export interface NodeObservation {
  readonly port: number;
  /** `cluster_state` of CLUSTER INFO. */
  readonly clusterState: string | undefined;
  /** `master_link_status` of INFO replication (replicas only). */
  readonly masterLinkStatus: string | undefined;
  readonly nodes: readonly ClusterNodeEntry[];
}

export interface ClusterHealth {
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** The slot map every observer agreed on, restricted to the expected members (empty when none). */
  readonly agreed: readonly ClusterNodeEntry[];
}

function describeEntry(entry: ClusterNodeEntry): string {
  const slots = entry.slots
    .map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`))
    .join(',');
  return `${entry.id}:${entry.role}:${entry.primaryId ?? '-'}:${slots}`;
}

/**
 * The rule "the cluster is ok", as the local cluster waits for it after start and after every chaos
 * operation. `expectedIds` are the nodes that run (not stopped, not paused); every one of them must
 * have answered (one observation each). Healthy means, for every observation:
 * - `cluster_state:ok`; a replica's `master_link_status:up`;
 * - it knows every expected member, none flagged `fail`, `fail?`, `handshake` or `noaddr`;
 * - no slot is migrating or importing;
 * - it describes the expected members identically (role, primary, slots) to the first observer;
 * and the agreed map assigns every one of the 16384 slots to exactly one expected primary.
 * Nodes outside `expectedIds` (stopped, killed, paused) may appear in any state; they just may not
 * own slots.
 */
export function assessClusterHealth(
  observations: readonly NodeObservation[],
  expectedIds: ReadonlySet<string>,
): ClusterHealth {
  const problems: string[] = [];
  if (observations.length === 0) return { ok: false, problems: ['no node answered'], agreed: [] };
  let reference: { port: number; signature: string } | undefined;
  let agreed: ClusterNodeEntry[] = [];
  for (const observation of observations) {
    const at = `:${observation.port}`;
    if (observation.clusterState !== 'ok')
      problems.push(`${at} cluster_state:${observation.clusterState ?? '?'}`);
    const myself = observation.nodes.find((n) => n.isMyself);
    if (!myself) {
      problems.push(`${at} has no 'myself' line`);
      continue;
    }
    if (myself.role === 'replica' && observation.masterLinkStatus !== 'up') {
      problems.push(`${at} master_link_status:${observation.masterLinkStatus ?? '?'}`);
    }
    for (const open of myself.openSlots) problems.push(`${at} has open slot ${open}`);
    const byId = new Map(observation.nodes.map((n) => [n.id, n]));
    const members: ClusterNodeEntry[] = [];
    for (const id of expectedIds) {
      const entry = byId.get(id);
      if (!entry) {
        problems.push(`${at} does not know ${id.slice(0, 8)}`);
        continue;
      }
      if (entry.isFailed || entry.isSuspected || entry.isIncomplete) {
        problems.push(`${at} flags ${id.slice(0, 8)} (:${entry.port}) ${entry.flags.join(',')}`);
      }
      members.push(entry);
    }
    members.sort((a, b) => a.id.localeCompare(b.id));
    const signature = members.map(describeEntry).join(' ');
    if (!reference) {
      reference = { port: observation.port, signature };
      agreed = members;
    } else if (signature !== reference.signature) {
      problems.push(`${at} disagrees with :${reference.port} on the slot map`);
    }
  }
  const rangesByPrimary = new Map(agreed.filter((n) => n.role === 'primary').map((n) => [n.id, n.slots]));
  const { uncovered, overlapping } = slotCoverage(rangesByPrimary);
  if (uncovered > 0) problems.push(`${uncovered} slots not served by a running primary`);
  if (overlapping > 0) problems.push(`${overlapping} slots claimed by more than one primary`);
  return { ok: problems.length === 0, problems, agreed };
}
