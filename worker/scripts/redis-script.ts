import type { KeyspaceLeaderError } from '../../core/errors.ts';
import { ScriptReplyError } from './script-errors.ts';

/**
 * One Lua script of the registry (worker/scripts/registry.ts), in the manner of BullMQ's
 * `src/commands/*.lua` + `scripts.ts`: a name by purpose, the Lua text with its header comment
 * (what it does, `KEYS[i]`, `ARGV[i]`, `Returns`), the number of keys, one parser that turns the
 * reply into a typed result and, when the script has error replies of its own, one function that
 * recognises them and maps them to typed errors. Nothing else looks at a script's reply or its
 * error text.
 *
 * Each script is a TypeScript module exporting its text rather than a `.lua` file: the same source
 * then runs unchanged under tsx, vitest, `tsc` and the esbuild bundle (`npm run build:worker`),
 * without a text loader that tsx lacks or a copy step beside the bundle (docs/worker.md, "Lua
 * scripts").
 */
export interface RedisScript<Result> {
  /** Purpose, kebab-case, unique in the registry (`lease-acquire`). */
  readonly name: string;
  /** ioredis command name given to `defineCommand` (`klLeaseAcquire`), unique in the registry. */
  readonly command: string;
  /** Number of `KEYS` the script takes: its header documents exactly `KEYS[1]..KEYS[n]`. */
  readonly numberOfKeys: number;
  /** The Lua source, header comment first. */
  readonly lua: string;
  /** The reply as a typed result; throws ScriptReplyError on a reply outside the documented shape. */
  readonly parse: (reply: unknown) => Result;
  /**
   * The script's own error replies (`redis.error_reply`) as typed errors, the reply kept as `cause`;
   * undefined for every other error (NOPERM, MOVED, a timeout...), which is passed on as it is.
   */
  readonly mapError?: (error: Error) => KeyspaceLeaderError | undefined;
}

/** 1 -> true, 0 -> false; anything else is a reply outside the script's contract. */
export function parseFlag(script: string, reply: unknown): boolean {
  if (reply === 1) return true;
  if (reply === 0) return false;
  throw new ScriptReplyError(script, reply);
}
