import type { Cluster } from 'ioredis';
import { epochRaise } from '../../../../worker/scripts/epoch-raise.ts';
import { leaseAcquire } from '../../../../worker/scripts/lease-acquire.ts';
import { leaseExtend } from '../../../../worker/scripts/lease-extend.ts';
import { leaseRelease } from '../../../../worker/scripts/lease-release.ts';
import { testClock } from './fakes.ts';

/**
 * An in-memory stand-in for the ioredis Cluster surface the leases use (defineCommand and the
 * commands it adds, get, pipeline with exists/incr/role/wait). The lease scripts are executed by
 * JavaScript twins, looked up by the command name the registry defines; keys expire on the fake clock. Chaos: a hash tag can be made to
 * hang (a dead primary: the command never answers) or to lose its data (a failover that lost writes).
 */
type Script = (keys: string[], args: string[], store: FakeStore) => number;

class FakeStore {
  private readonly values = new Map<string, { value: string; expiresAtMs: number }>();
  get(key: string): string | null {
    const entry = this.values.get(key);
    if (!entry) return null;
    if (testClock.monotonicMs() >= entry.expiresAtMs) {
      this.values.delete(key);
      return null;
    }
    return entry.value;
  }
  set(key: string, value: string, ttlMs?: number): void {
    this.values.set(key, {
      value,
      expiresAtMs: ttlMs === undefined ? Number.POSITIVE_INFINITY : testClock.monotonicMs() + ttlMs,
    });
  }
  del(key: string): void {
    this.values.delete(key);
  }
  keys(): string[] {
    return [...this.values.keys()].filter((k) => this.get(k) !== null);
  }
}

const twins = new Map<string, Script>([
  [
    leaseAcquire.command,
    ([lease], [value, ttl], s) => {
      if (s.get(lease as string) !== null) return 0;
      s.set(lease as string, value as string, Number(ttl));
      return 1;
    },
  ],
  [
    leaseExtend.command,
    ([lease, epoch], [value, ttl, token], s) => {
      const current = s.get(lease as string);
      if (current !== null && current !== value) return 0;
      s.set(lease as string, value as string, Number(ttl));
      if (Number(token) > Number(s.get(epoch as string) ?? 0)) s.set(epoch as string, token as string);
      return 1;
    },
  ],
  [
    leaseRelease.command,
    ([lease], [value], s) => {
      if (s.get(lease as string) !== value) return 0;
      s.del(lease as string);
      return 1;
    },
  ],
  [
    epochRaise.command,
    ([epoch], [token], s) => {
      if (Number(token) > Number(s.get(epoch as string) ?? 0)) {
        s.set(epoch as string, token as string);
        return 1;
      }
      return 0;
    },
  ],
]);

function tagOf(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

const never = new Promise<never>(() => {});

export class FakeCluster {
  readonly store = new FakeStore();
  /** Tags whose primary is down: commands on them never answer. */
  readonly down = new Set<string>();
  /** Replicas attached to every primary (ROLE) and replicas that acknowledge (WAIT). */
  attachedReplicas = 0;
  ackingReplicas = 0;
  roleRefused = false;
  readonly commands: { command: string; key: string }[] = [];
  /** Scripts given to `defineCommand` (name -> number of keys). */
  readonly defined = new Map<string, number>();
  /** When set, a script call it answers (a promise) is not run: a test's fault on one script. */
  intercept: ((command: string, keys: string[], args: string[]) => Promise<unknown> | undefined) | undefined;

  asCluster(): Cluster {
    return this as unknown as Cluster;
  }

  /** A failover that lost the writes of `tag`'s primary. */
  loseData(tag: string): void {
    for (const key of this.store.keys()) if (tagOf(key) === tag) this.store.del(key);
  }

  /** ioredis' defineCommand: adds `name` to the client and to its pipelines. */
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void {
    const script: Script =
      twins.get(name) ??
      (() => {
        throw new Error(`no twin for script ${name}`);
      });
    this.defined.set(name, definition.numberOfKeys);
    (this as unknown as Record<string, unknown>)[name] = (...rest: (string | number)[]) => {
      const flat = rest.map(String);
      const keys = flat.slice(0, definition.numberOfKeys);
      const args = flat.slice(definition.numberOfKeys);
      const intercepted = this.intercept?.(name, keys, args);
      if (intercepted) return intercepted;
      return this.answer(keys[0] ?? '', name, () => script(keys, args, this.store));
    };
  }

  private async answer<T>(key: string, command: string, compute: () => T): Promise<T> {
    this.commands.push({ command, key });
    if (this.down.has(tagOf(key))) return never;
    await Promise.resolve();
    return compute();
  }

  get(key: string): Promise<string | null> {
    return this.answer(key, 'GET', () => this.store.get(key));
  }

  pipeline() {
    const queue: { key: string | undefined; run: () => unknown }[] = [];
    const pipeline = {
      exists: (key: string) => {
        queue.push({ key, run: () => (this.store.get(key) === null ? 0 : 1) });
        return pipeline;
      },
      incr: (key: string) => {
        queue.push({
          key,
          run: () => {
            const next = Number(this.store.get(key) ?? 0) + 1;
            this.store.set(key, String(next));
            return next;
          },
        });
        return pipeline;
      },
      role: () => {
        queue.push({
          key: undefined,
          run: () => {
            if (this.roleRefused)
              throw new Error("NOPERM this user has no permissions to run the 'role' command");
            return [
              'master',
              0,
              Array.from({ length: this.attachedReplicas }, (_, i) => ['127.0.0.1', `${7000 + i}`, '0']),
            ];
          },
        });
        return pipeline;
      },
      wait: (_replicas: number, _timeoutMs: number) => {
        queue.push({ key: undefined, run: () => this.ackingReplicas });
        return pipeline;
      },
      exec: async (): Promise<[Error | null, unknown][]> => {
        const key = queue.find((q) => q.key !== undefined)?.key ?? '';
        return this.answer(key, 'PIPELINE', () =>
          queue.map((q): [Error | null, unknown] => {
            try {
              return [null, q.run()];
            } catch (error) {
              return [error as Error, undefined];
            }
          }),
        );
      },
    };
    return pipeline;
  }
}

export { tagOf };
