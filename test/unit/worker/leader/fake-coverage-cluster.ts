import type { Cluster } from 'ioredis';
import { coveragePublish } from '../../../../worker/scripts/coverage-publish.ts';
import { coverageRelease } from '../../../../worker/scripts/coverage-release.ts';

/**
 * An in-memory coverage hash behind every call CoverageRegistry makes: its two scripts (the whole
 * hash as it was before an optional write; a delete of a field only while it carries a given
 * instance id), each atomic like a Lua script on one node and run as the command the script registry
 * defines (`defineCommand`), HDEL, and the pipeline that registries
 * before sequence 11 of issue 11 used (so a test written against today's code fails on its assertions).
 */
export function fakeCoverageCluster(hash: Map<string, string>): Cluster {
  const pipeline = () => {
    const ops: (() => unknown)[] = [];
    const p = {
      hset: (_k: string, field: string, value: string) => ops.push(() => hash.set(field, value)) && p,
      pexpire: () => ops.push(() => 1) && p,
      hgetall: () => ops.push(() => Object.fromEntries(hash)) && p,
      exec: async () => ops.map((op) => [null, op()]),
    };
    return p;
  };
  const hdel = async (_k: string, ...fields: string[]) => fields.filter((f) => hash.delete(f)).length;
  const commands: Record<string, (_key: string, ...args: string[]) => Promise<unknown>> = {
    [coveragePublish.command]: async (_key, ...args) => {
      const before = [...hash].flat();
      const [field, value] = args;
      if (field !== undefined && field !== '' && value !== undefined) hash.set(field, value);
      return before;
    },
    [coverageRelease.command]: async (_key, ...args) => {
      const [field, instanceId] = args as [string, string];
      if (hash.get(field)?.split(':')[2] !== instanceId) return 0;
      hash.delete(field);
      return 1;
    },
  };
  const cluster: Record<string, unknown> = {
    pipeline,
    hdel,
    defineCommand: (name: string) => {
      cluster[name] = commands[name] ?? (async () => Promise.reject(new Error(`unexpected script ${name}`)));
    },
  };
  return cluster as unknown as Cluster;
}
