import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { coveragePublish } from './coverage-publish.ts';
import { coverageRelease } from './coverage-release.ts';
import { epochRaise } from './epoch-raise.ts';
import { keyDeadlines } from './key-deadlines.ts';
import { leaseAcquire } from './lease-acquire.ts';
import { leaseExtend } from './lease-extend.ts';
import { leaseRelease } from './lease-release.ts';
import { outboxAppend } from './outbox-append.ts';
import { outboxTrim } from './outbox-trim.ts';
import type { RedisScript } from './redis-script.ts';
import { setIfNotOlder } from './set-if-not-older.ts';

/**
 * Every Lua script the worker runs (the list is in docs/worker.md, "Lua scripts"). bench/ keeps the
 * seed's own algorithm and is not part of the worker.
 */
export const SCRIPTS: readonly RedisScript<unknown>[] = [
  leaseAcquire,
  leaseExtend,
  leaseRelease,
  epochRaise,
  setIfNotOlder,
  coveragePublish,
  coverageRelease,
  outboxAppend,
  outboxTrim,
  keyDeadlines,
];

/** A Cluster client, or a connection to one node (scripts that name no keys run where they are sent). */
export type ScriptClient = Cluster | Redis;

export type ScriptArg = string | Buffer | number;

/** The part of ioredis' Cluster (and Redis) the registry uses: `defineCommand` and the commands it adds. */
interface ScriptHost {
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void;
}

type ScriptCommand = (...keysAndArgs: ScriptArg[]) => Promise<unknown>;
type QueueCommand = (...keysAndArgs: ScriptArg[]) => ChainableCommander;

/**
 * Runs the registry's scripts on one ioredis client. Every script is given to ioredis once per
 * client with `defineCommand`: ioredis then sends each script's text once per connection (EVAL), and
 * EVALSHA after that; when a node answers NOSCRIPT (SCRIPT FLUSH, a node that lost its script
 * cache) ioredis sends the text again on that connection and the call succeeds -- direct calls and
 * pipelined ones alike (test/integration/worker/stream-outbox.test.ts flushes the cache). No
 * caller sends a script's text itself.
 *
 * `run` and `settle` are the one place a reply is parsed (`script.parse`) and an error reply mapped
 * (`script.mapError`, else the error as it came).
 */
export class ScriptRunner {
  constructor(private readonly client: ScriptClient) {}

  /** Runs `script` with `keys` (exactly `numberOfKeys` of them) and `args`; the typed result. */
  async run<Result>(
    script: RedisScript<Result>,
    keys: readonly string[],
    args: readonly ScriptArg[],
  ): Promise<Result> {
    checkKeys(script, keys);
    const command = (this.client as unknown as Record<string, ScriptCommand>)[script.command];
    if (typeof command !== 'function')
      throw new TypeError(`script ${script.name} is not defined on this client`);
    let reply: unknown;
    try {
      reply = await command.call(this.client, ...keys, ...args);
    } catch (error) {
      throw mapScriptError(script, error);
    }
    return script.parse(reply);
  }

  /** Queues `script` on `pipeline` (made by this client); read its entry of `exec()` with `settle`. */
  queue(
    pipeline: ChainableCommander,
    script: RedisScript<unknown>,
    keys: readonly string[],
    args: readonly ScriptArg[],
  ): void {
    checkKeys(script, keys);
    const command = (pipeline as unknown as Record<string, QueueCommand>)[script.command];
    if (typeof command !== 'function')
      throw new TypeError(`script ${script.name} is not defined on this client`);
    command.call(pipeline, ...keys, ...args);
  }

  /** One pipeline entry (`[error, reply]`) of a queued `script`: the typed result, or throws the mapped error. */
  settle<Result>(script: RedisScript<Result>, entry: [Error | null, unknown] | undefined): Result {
    if (!entry) throw new TypeError(`script ${script.name}: no pipeline reply`);
    const [error, reply] = entry;
    if (error) throw mapScriptError(script, error);
    return script.parse(reply);
  }
}

const runners = new WeakMap<object, ScriptRunner>();

/**
 * The runner of `client`, defining every script on it the first time (one `defineCommand` per
 * script and client, whoever asks first; nothing is sent to Redis until a script runs).
 */
export function scriptsOn(client: ScriptClient): ScriptRunner {
  let runner = runners.get(client);
  if (runner === undefined) {
    const host = client as unknown as ScriptHost;
    for (const script of SCRIPTS)
      host.defineCommand(script.command, { lua: script.lua, numberOfKeys: script.numberOfKeys });
    runner = new ScriptRunner(client);
    runners.set(client, runner);
  }
  return runner;
}

function checkKeys(script: RedisScript<unknown>, keys: readonly string[]): void {
  if (keys.length !== script.numberOfKeys)
    throw new TypeError(`script ${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
}

function mapScriptError(script: RedisScript<unknown>, error: unknown): unknown {
  return (error instanceof Error && script.mapError?.(error)) || error;
}
