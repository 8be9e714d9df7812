import type { Cluster } from 'ioredis';
import { leaseScripts } from '../../../../worker/leader/lease-scripts.ts';
import { testClock } from './fakes.ts';

/**
 * An in-memory stand-in for the ioredis Cluster surface the leases use (evalsha, eval, get,
 * pipeline with evalsha/eval/incr/role/wait). The lease scripts are executed by JavaScript twins
 * (looked up by SHA-1 or text), keys expire on the fake clock. Chaos: a hash tag can be made to
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
    leaseScripts.acquire.sha1,
    ([lease], [value, ttl], s) => {
      if (s.get(lease as string) !== null) return 0;
      s.set(lease as string, value as string, Number(ttl));
      return 1;
    },
  ],
  [
    leaseScripts.extend.sha1,
    ([lease, epoch], [value, ttl, token], s) => {
      const current = s.get(lease as string);
      if (current !== null && current !== value) return 0;
      s.set(lease as string, value as string, Number(ttl));
      if (Number(token) > Number(s.get(epoch as string) ?? 0)) s.set(epoch as string, token as string);
      return 1;
    },
  ],
  [
    leaseScripts.release.sha1,
    ([lease], [value], s) => {
      if (s.get(lease as string) !== value) return 0;
      s.del(lease as string);
      return 1;
    },
  ],
  [
    leaseScripts.raiseEpoch.sha1,
    ([epoch], [token], s) => {
      if (Number(token) > Number(s.get(epoch as string) ?? 0)) {
        s.set(epoch as string, token as string);
        return 1;
      }
      return 0;
    },
  ],
]);

const textToSha = new Map(Object.values(leaseScripts).map((s) => [s.text, s.sha1]));

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
  /** Scripts the fake server has cached (EVALSHA of another answers NOSCRIPT). */
  readonly scriptCache = new Set<string>();

  asCluster(): Cluster {
    return this as unknown as Cluster;
  }

  /** A failover that lost the writes of `tag`'s primary. */
  loseData(tag: string): void {
    for (const key of this.store.keys()) if (tagOf(key) === tag) this.store.del(key);
  }

  private run(command: string, shaOrText: string, numKeys: number, rest: (string | number)[]): number {
    const sha = command === 'EVALSHA' ? shaOrText : textToSha.get(shaOrText);
    if (command === 'EVALSHA' && !this.scriptCache.has(shaOrText))
      throw new Error('NOSCRIPT No matching script.');
    const script = sha ? twins.get(sha) : undefined;
    if (!script || !sha) throw new Error('ERR unknown script');
    this.scriptCache.add(sha);
    const flat = rest.map(String);
    return script(flat.slice(0, numKeys), flat.slice(numKeys), this.store);
  }

  private async answer<T>(key: string, command: string, compute: () => T): Promise<T> {
    this.commands.push({ command, key });
    if (this.down.has(tagOf(key))) return never;
    await Promise.resolve();
    return compute();
  }

  evalsha(sha: string, numKeys: number, ...rest: (string | number)[]): Promise<number> {
    return this.answer(String(rest[0]), 'EVALSHA', () => this.run('EVALSHA', sha, numKeys, rest));
  }

  eval(text: string, numKeys: number, ...rest: (string | number)[]): Promise<number> {
    return this.answer(String(rest[0]), 'EVAL', () => this.run('EVAL', text, numKeys, rest));
  }

  get(key: string): Promise<string | null> {
    return this.answer(key, 'GET', () => this.store.get(key));
  }

  pipeline() {
    const queue: { key: string | undefined; run: () => unknown }[] = [];
    const pipeline = {
      evalsha: (sha: string, numKeys: number, ...rest: (string | number)[]) => {
        queue.push({ key: String(rest[0]), run: () => this.run('EVALSHA', sha, numKeys, rest) });
        return pipeline;
      },
      eval: (text: string, numKeys: number, ...rest: (string | number)[]) => {
        queue.push({ key: String(rest[0]), run: () => this.run('EVAL', text, numKeys, rest) });
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
