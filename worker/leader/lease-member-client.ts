import type { Cluster } from 'ioredis';
import type { RedlockClient } from 'redlock';
import { withTimeout } from '../../core/errors.ts';
import { ReplicaAckError } from './lease-errors.ts';
import { type LeaseScript, leaseScripts } from './lease-scripts.ts';

/**
 * One member of the lease as redlock sees it: a "client" whose evalsha/eval run the lease scripts on
 * this member's own keys through the one shared Cluster client. redlock passes its resource name as
 * KEYS[1]; it is replaced by `leaseKey` (a key whose hash tag lives on this member's primary), so N
 * members give redlock a quorum over N primaries without N connections.
 *
 * Contract with redlock 5.0.0-beta.2: it calls `evalsha(sha1, 1, [resource, ...args])`, falls back
 * to `eval(text, ...)` when the reply error starts with NOSCRIPT, and counts a vote "for" when the
 * number returned equals the number of resources (1). Anything thrown is a vote "against".
 *
 * Every call is bounded by `voteTimeoutMs()`: redlock waits for all votes before it settles a failed
 * quorum, and ioredis keeps a command for a dead primary queued until its retries run out, so an
 * unbounded vote would hold every operation for as long as a failover takes. A timed-out command may
 * still run later on Redis; that is harmless (see docs/leader-election.md, "Late writes").
 */
export interface LeaseMemberClientOptions {
  readonly cluster: Cluster;
  readonly leaseKey: string;
  /** Epoch counter beside the lease key (same hash tag); raised by every renewal. */
  readonly epochKey: string;
  /** Bound of one vote, read at each call (it follows the TTL of the current operation). */
  readonly voteTimeoutMs: () => number;
  /** Fencing token of the hold whose owner value is given (0 when unknown): passed to renewals. */
  readonly tokenOf: (ownerValue: string) => number;
  /**
   * Single-key mode: after a successful acquire or renewal, `WAIT 1 <voteTimeoutMs>` in the same
   * pipeline (so on the same primary connection), and fail the vote (ReplicaAckError) when the
   * primary has a replica attached (ROLE, same pipeline) and none acknowledged the write.
   */
  readonly requireReplicaAck?: boolean;
  /**
   * Replicas the topology shows for this member's shard: used only when ROLE is refused (an ACL user
   * without @admin), in place of the replicas the primary reports attached.
   */
  readonly knownReplicas?: () => number;
}

type Verb = 'EVALSHA' | 'EVAL';

const SCRIPTS: readonly LeaseScript[] = [leaseScripts.acquire, leaseScripts.extend, leaseScripts.release];

function scriptOf(verb: Verb, hashOrText: string): LeaseScript {
  const found = SCRIPTS.find((s) => (verb === 'EVALSHA' ? s.sha1 === hashOrText : s.text === hashOrText));
  // Only the scripts this module gave redlock can arrive here; anything else is a wiring error.
  if (!found) throw new TypeError('LeaseMemberClient: not one of the lease scripts');
  return found;
}

/** redlock passes `[keys..., args...]` as one array; tolerate the spread form too. */
function flatten(keysAndArgs: readonly unknown[]): string[] {
  return keysAndArgs.flat().map((item) => String(item));
}

/** Replicas attached to a primary, from a ROLE reply (`['master', offset, [[ip, port, offset], ...]]`). */
function attachedReplicas(role: unknown): number | undefined {
  if (!Array.isArray(role) || role.length < 3) return undefined;
  const kind = Buffer.isBuffer(role[0]) ? role[0].toString() : String(role[0]);
  if (kind !== 'master') return undefined;
  return Array.isArray(role[2]) ? role[2].length : undefined;
}

export class LeaseMemberClient implements RedlockClient {
  readonly leaseKey: string;
  readonly epochKey: string;

  constructor(private readonly options: LeaseMemberClientOptions) {
    this.leaseKey = options.leaseKey;
    this.epochKey = options.epochKey;
  }

  // Rest parameters: redlock passes one array, ioredis-style callers spread; both are flattened.
  evalsha(hash: string, numKeys: number, ...keysAndArgs: unknown[]): Promise<unknown> {
    return this.run('EVALSHA', hash, numKeys, keysAndArgs);
  }

  eval(script: string, numKeys: number, ...keysAndArgs: unknown[]): Promise<unknown> {
    return this.run('EVAL', script, numKeys, keysAndArgs);
  }

  private async run(
    verb: Verb,
    hashOrText: string,
    numKeys: number,
    keysAndArgs: readonly unknown[],
  ): Promise<unknown> {
    const script = scriptOf(verb, hashOrText);
    const flat = flatten(keysAndArgs);
    if (numKeys !== 1) throw new TypeError(`LeaseMemberClient: expected one resource, got ${numKeys}`);
    const args = flat.slice(numKeys);
    const ownerValue = args[0] ?? '';
    const keys = script === leaseScripts.extend ? [this.leaseKey, this.epochKey] : [this.leaseKey];
    const extra = script === leaseScripts.extend ? [String(this.options.tokenOf(ownerValue))] : [];
    const commandArgs = [hashOrText, keys.length, ...keys, ...args, ...extra] as const;
    const timeoutMs = this.options.voteTimeoutMs();
    const what = `${script === leaseScripts.acquire ? 'acquire' : script === leaseScripts.extend ? 'extend' : 'release'} on ${this.leaseKey}`;
    const writes = script !== leaseScripts.release;
    if (!this.options.requireReplicaAck || !writes) {
      const cluster = this.options.cluster;
      const reply = verb === 'EVALSHA' ? cluster.evalsha(...commandArgs) : cluster.eval(...commandArgs);
      return await withTimeout(reply, timeoutMs, what);
    }
    return await withTimeout(this.runWithReplicaAck(verb, commandArgs, timeoutMs), 2 * timeoutMs, what);
  }

  /**
   * Single-key fencing: INCR of the epoch counter, acknowledged like a lease write (ROLE, WAIT in the
   * same pipeline). Returns the new token; rejects (ReplicaAckError, TimeoutError) when it cannot
   * be shown to survive a failover.
   */
  async incrementEpoch(): Promise<number> {
    const timeoutMs = this.options.voteTimeoutMs();
    const run = async () => {
      const pipeline = this.options.cluster.pipeline();
      pipeline.incr(this.epochKey);
      pipeline.role();
      pipeline.wait(1, timeoutMs);
      const results = (await pipeline.exec()) ?? [];
      const [incrError, token] = results[0] ?? [new Error('empty pipeline reply'), undefined];
      if (incrError) throw incrError;
      this.checkReplicaAck(this.epochKey, results, timeoutMs);
      return Number(token);
    };
    return await withTimeout(run(), 2 * timeoutMs, `epoch increment on ${this.epochKey}`);
  }

  /**
   * EVAL[SHA], ROLE, WAIT as one pipeline: ioredis routes a cluster pipeline by the slot of its keyed
   * commands, so ROLE and WAIT run on the primary (and connection) that took the write, and WAIT
   * covers it. WAIT blocks that shared connection for at most `timeoutMs` when no replica answers.
   */
  private async runWithReplicaAck(
    verb: Verb,
    commandArgs: readonly [string, number, ...string[]],
    timeoutMs: number,
  ): Promise<unknown> {
    const pipeline = this.options.cluster.pipeline();
    if (verb === 'EVALSHA') pipeline.evalsha(...commandArgs);
    else pipeline.eval(...commandArgs);
    pipeline.role();
    pipeline.wait(1, timeoutMs);
    const results = (await pipeline.exec()) ?? [];
    const [scriptError, scriptReply] = results[0] ?? [new Error('empty pipeline reply'), undefined];
    // Rethrown as is: redlock recognises NOSCRIPT by the reply error and retries with EVAL.
    if (scriptError) throw scriptError;
    if (scriptReply !== 1) return scriptReply;
    this.checkReplicaAck(this.leaseKey, results, timeoutMs);
    return scriptReply;
  }

  /** `results[1]` is ROLE's reply, `results[2]` WAIT's. */
  private checkReplicaAck(key: string, results: readonly [Error | null, unknown][], timeoutMs: number): void {
    const [roleError, roleReply] = results[1] ?? [];
    const [waitError, acked] = results[2] ?? [];
    if (waitError) throw waitError;
    const known = this.options.knownReplicas?.() ?? 1;
    const replicas = roleError ? known : (attachedReplicas(roleReply) ?? known);
    if (replicas > 0 && !(Number(acked) >= 1)) throw new ReplicaAckError(key, replicas, timeoutMs);
  }
}
