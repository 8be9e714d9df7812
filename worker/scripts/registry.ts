import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { type ChainableCommander, type Cluster, Command, type Redis } from 'ioredis';
import { keySlot } from '../../core/key-slot.ts';
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
import { valueRead, valuesRead } from './value-read.ts';

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
  valueRead,
  valuesRead,
];

/** A Cluster client, or a connection to one node (scripts that name no keys run where they are sent). */
export type ScriptClient = Cluster | Redis;

export type ScriptArg = string | Buffer | number;
export type ScriptKey = string | Buffer;

/** The part of ioredis' Cluster (and Redis) the registry uses: `defineCommand` and the commands it adds. */
interface ScriptHost {
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void;
}

type ScriptCommand = (...keysAndArgs: ScriptArg[]) => Promise<unknown>;
type QueueCommand = (...keysAndArgs: ScriptArg[]) => ChainableCommander;

/**
 * A script whose text starts with `#!lua flags=no-writes` (with or without further flags) is
 * read-only: Redis runs it while writes are paused (CLIENT PAUSE WRITE) and while memory is full, and
 * the registry runs it with EVALSHA_RO / EVAL_RO, whose keys are declared read-only (EVAL and EVALSHA
 * declare theirs read-write: a user with read-only rights on a key, `%R~`, is refused them).
 */
export function isReadOnly(script: RedisScript<unknown>): boolean {
  return /^#!lua flags=(?:[a-z-]+,)*no-writes(?:,[a-z-]+)*\n/.test(script.lua);
}

/**
 * Runs the registry's scripts on one ioredis client. Every script is given to ioredis once per
 * client with `defineCommand`: ioredis then sends each script's text once per connection (EVAL), and
 * EVALSHA after that; when a node answers NOSCRIPT (SCRIPT FLUSH, a node that lost its script
 * cache) ioredis sends the text again on that connection and the call succeeds -- direct calls and
 * pipelined ones alike (test/integration/worker/stream-outbox.test.ts flushes the cache). No
 * caller sends a script's text itself.
 *
 * Read-only scripts (`isReadOnly`) are run with EVALSHA_RO instead, which ioredis' script commands
 * cannot send: on NOSCRIPT the runner sends the text with EVAL_RO, once per node at a time (the
 * other calls to that node that met NOSCRIPT meanwhile wait for it, then send EVALSHA_RO again), so
 * a batch of many reads after a failover carries the text once, not once per read. A read-only call
 * whose key is not valid UTF-8 bypasses auto-pipelining: ioredis groups auto-pipelined commands by
 * the slot of the key's UTF-8 decoding, and a key whose decoding hashes elsewhere fails its whole
 * group ("All keys in the pipeline should belong to the same slots allocation group").
 *
 * `run`, `runBuffer` and `settle` are the one place a reply is parsed (`script.parse`) and an error
 * reply mapped (`script.mapError`, else the error as it came).
 */
export class ScriptRunner {
  /** Per node (the slot's node list, as ioredis keys it): the EVAL_RO in flight after a NOSCRIPT. */
  private readonly loads = new Map<string, Promise<unknown>>();

  constructor(private readonly client: ScriptClient) {}

  /** Runs `script` with `keys` (exactly `numberOfKeys` of them) and `args`; the typed result. */
  run<Result>(
    script: RedisScript<Result>,
    keys: readonly ScriptKey[],
    args: readonly ScriptArg[],
  ): Promise<Result> {
    return this.invoke(script, keys, args, false);
  }

  /**
   * `run` with the reply's strings as Buffers, exactly as Redis sent them: for scripts that answer
   * binary data (values, key names that need not be UTF-8).
   */
  runBuffer<Result>(
    script: RedisScript<Result>,
    keys: readonly ScriptKey[],
    args: readonly ScriptArg[],
  ): Promise<Result> {
    return this.invoke(script, keys, args, true);
  }

  /**
   * Queues `script` on `pipeline` (made by this client); read its entry of `exec()` with `settle`.
   * Not for read-only scripts: a pipeline cannot resend one's text on NOSCRIPT.
   */
  queue(
    pipeline: ChainableCommander,
    script: RedisScript<unknown>,
    keys: readonly string[],
    args: readonly ScriptArg[],
  ): void {
    checkKeys(script, keys);
    if (isReadOnly(script))
      throw new TypeError(`script ${script.name} is read-only: run it, do not queue it`);
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

  private async invoke<Result>(
    script: RedisScript<Result>,
    keys: readonly ScriptKey[],
    args: readonly ScriptArg[],
    binary: boolean,
  ): Promise<Result> {
    checkKeys(script, keys);
    const command = isReadOnly(script) ? undefined : this.defined(script, binary);
    let reply: unknown;
    try {
      reply = command
        ? await command(...keys, ...args)
        : await this.invokeReadOnly(script, keys, args, binary);
    } catch (error) {
      throw mapScriptError(script, error);
    }
    return script.parse(reply);
  }

  /** The command `defineCommand` made for `script` (its `<command>Buffer` variant when `binary`). */
  private defined(script: RedisScript<unknown>, binary: boolean): ScriptCommand {
    const name = binary ? `${script.command}Buffer` : script.command;
    const command = (this.client as unknown as Record<string, ScriptCommand>)[name];
    if (typeof command !== 'function')
      throw new TypeError(`script ${script.name} is not defined on this client`);
    return command.bind(this.client);
  }

  private async invokeReadOnly(
    script: RedisScript<unknown>,
    keys: readonly ScriptKey[],
    args: readonly ScriptArg[],
    binary: boolean,
  ): Promise<unknown> {
    const keysAndArgs = [keys.length, ...keys, ...args];
    const sha = shaOf(script.lua);
    try {
      return await this.send('evalsha_ro', [sha, ...keysAndArgs], keys, binary);
    } catch (error) {
      if (!isNoScript(error)) throw error;
    }
    const node = this.nodeOf(keys[0]);
    const loading = this.loads.get(node);
    if (loading !== undefined) {
      await loading.catch(() => {});
      try {
        return await this.send('evalsha_ro', [sha, ...keysAndArgs], keys, binary);
      } catch (error) {
        if (!isNoScript(error)) throw error;
      }
    }
    const load = this.send('eval_ro', [script.lua, ...keysAndArgs], keys, binary);
    if (!this.loads.has(node)) {
      this.loads.set(node, load);
      const done = () => {
        if (this.loads.get(node) === load) this.loads.delete(node);
      };
      load.then(done, done);
    }
    return await load;
  }

  private send(
    name: 'evalsha_ro' | 'eval_ro',
    args: readonly (ScriptArg | ScriptKey)[],
    keys: readonly ScriptKey[],
    binary: boolean,
  ): Promise<unknown> {
    if (keys.some((key) => typeof key !== 'string' && !isUtf8(key))) {
      const command = new Command(name, [...args], { replyEncoding: binary ? null : 'utf8' });
      return this.client.sendCommand(command) as Promise<unknown>;
    }
    const call = (this.client as unknown as Record<string, ScriptCommand>)[binary ? `${name}Buffer` : name];
    if (typeof call !== 'function') throw new TypeError(`this client has no ${name}`);
    return call.call(this.client, ...args);
  }

  /** The node list ioredis keeps for the slot of `key` ('' before the slot map is known). */
  private nodeOf(key: ScriptKey | undefined): string {
    const slots = (this.client as { slots?: readonly (readonly string[] | undefined)[] }).slots;
    return key === undefined ? '' : (slots?.[keySlot(key)]?.join(',') ?? '');
  }
}

const shas = new Map<string, string>();

function shaOf(lua: string): string {
  let sha = shas.get(lua);
  if (sha === undefined) {
    sha = createHash('sha1').update(lua).digest('hex');
    shas.set(lua, sha);
  }
  return sha;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
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

function checkKeys(script: RedisScript<unknown>, keys: readonly ScriptKey[]): void {
  if (keys.length !== script.numberOfKeys)
    throw new TypeError(`script ${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
}

function mapScriptError(script: RedisScript<unknown>, error: unknown): unknown {
  return (error instanceof Error && script.mapError?.(error)) || error;
}
