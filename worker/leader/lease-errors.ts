import { KeyspaceLeaderError } from '../../core/errors.ts';
import type { StoppedLeadingReason } from './leadership.ts';

/**
 * Typed errors of the lease and the election. The elector branches on the class: LeaseLostError ends leadership at
 * once, LeaseUnavailableError is retried until the renew deadline.
 */

/** Enough lease members hold another owner's value that this hold can no longer reach a majority. */
export class LeaseLostError extends KeyspaceLeaderError {
  readonly refusedBy: number;
  readonly members: number;
  constructor(refusedBy: number, members: number, options?: { cause?: unknown }) {
    super('LEASE_LOST', `lease held by another owner on ${refusedBy} of ${members} members`, options);
    this.refusedBy = refusedBy;
    this.members = members;
  }
}

/** The operation reached no majority for reasons other than another owner (timeouts, errors, replicas). */
export class LeaseUnavailableError extends KeyspaceLeaderError {
  readonly operation: 'acquire' | 'extend' | 'release' | 'fence';
  constructor(
    operation: 'acquire' | 'extend' | 'release' | 'fence',
    message: string,
    options?: { cause?: unknown },
  ) {
    super('LEASE_UNAVAILABLE', `lease ${operation}: ${message}`, options);
    this.operation = operation;
  }
}

/** A write was applied on a primary but no replica acknowledged it within the bound (WAIT). */
export class ReplicaAckError extends KeyspaceLeaderError {
  readonly connectedReplicas: number;
  constructor(key: string, connectedReplicas: number, timeoutMs: number) {
    super(
      'REPLICA_ACK_MISSING',
      `no replica acknowledged the write of ${key} within ${timeoutMs} ms (${connectedReplicas} connected)`,
    );
    this.connectedReplicas = connectedReplicas;
  }
}

/** The reason a LeadershipGrant's signal was aborted (`signal.reason`). */
export class LeadershipEndedError extends KeyspaceLeaderError {
  readonly reason: StoppedLeadingReason;
  constructor(reason: StoppedLeadingReason) {
    super('LEADERSHIP_ENDED', `leadership ended: ${reason}`);
    this.reason = reason;
  }
}

/**
 * The elector read its term's grant back from its LeadershipState and found another (or none): the
 * state was written by something other than this elector. A defect, never a runtime condition.
 */
export class GrantMismatchError extends KeyspaceLeaderError {
  constructor(termFencingToken: number, publishedFencingToken: number | undefined) {
    super(
      'GRANT_MISMATCH',
      `the leadership state holds ${publishedFencingToken === undefined ? 'no grant' : `the grant of fencing token ${publishedFencingToken}`}, not that of the term in office (fencing token ${termFencingToken})`,
    );
  }
}
