import { describe, expect, it } from 'vitest';
import { RedisServerMissingError } from '../../../local/errors.ts';
import { ensureRedisServer, type RedisBinaryDeps } from '../../../local/redis-binary.ts';

/** A fake system: which executables exist, before and after an install, and what was run. */
function fakeSystem(setup: {
  executables?: Record<string, string>;
  installs?: Record<string, string>;
  version?: string;
  root?: boolean;
  platform?: NodeJS.Platform;
  failOn?: string;
}) {
  const executables = new Map(Object.entries(setup.executables ?? {}));
  const runs: string[] = [];
  const logs: string[] = [];
  const deps: RedisBinaryDeps = {
    findExecutable: async (name) => executables.get(name),
    readVersion: async () => setup.version ?? '7.0.15',
    isRoot: () => setup.root ?? false,
    platform: setup.platform ?? 'linux',
    run: async (command, args) => {
      const line = [command, ...args].join(' ');
      runs.push(line);
      if (setup.failOn !== undefined && line.includes(setup.failOn)) throw new Error(`${line} failed`);
      if (args[0] === 'install')
        for (const [name, path] of Object.entries(setup.installs ?? {})) executables.set(name, path);
    },
    log: (line) => logs.push(line),
  };
  return { deps, runs, logs };
}

describe('ensureRedisServer', () => {
  it('returns the installed binary and installs nothing when it is there', async () => {
    const { deps, runs } = fakeSystem({
      executables: { 'redis-server': '/usr/bin/redis-server' },
      root: true,
    });
    expect(await ensureRedisServer(deps)).toBe('/usr/bin/redis-server');
    expect(runs).toEqual([]);
  });

  it('refuses a redis-server older than 7.0', async () => {
    const { deps } = fakeSystem({
      executables: { 'redis-server': '/usr/bin/redis-server' },
      version: '6.2.14',
    });
    await expect(ensureRedisServer(deps)).rejects.toThrow(RedisServerMissingError);
    await expect(ensureRedisServer(deps)).rejects.toThrow(/6\.2\.14.*older than 7\.0/);
  });

  it('as root with apt-get: runs apt-get update, then install, printing each step', async () => {
    const { deps, runs, logs } = fakeSystem({
      executables: { 'apt-get': '/usr/bin/apt-get' },
      installs: { 'redis-server': '/usr/bin/redis-server' },
      root: true,
    });
    expect(await ensureRedisServer(deps)).toBe('/usr/bin/redis-server');
    expect(runs).toEqual(['/usr/bin/apt-get update', '/usr/bin/apt-get install -y redis-server']);
    expect(logs.join('\n')).toContain('apt-get update && apt-get install -y redis-server');
  });

  it('without root: throws with the commands for Debian/Ubuntu and macOS, and runs nothing', async () => {
    const { deps, runs } = fakeSystem({ executables: { 'apt-get': '/usr/bin/apt-get' }, root: false });
    const error = await ensureRedisServer(deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisServerMissingError);
    expect((error as Error).message).toContain('sudo apt-get install -y redis-server');
    expect((error as Error).message).toContain('brew install redis');
    expect((error as RedisServerMissingError).code).toBe('REDIS_SERVER_MISSING');
    expect(runs).toEqual([]);
  });

  it('as root without apt-get, or on macOS: throws and runs nothing', async () => {
    for (const setup of [
      { root: true },
      { root: true, platform: 'darwin' as const, executables: { 'apt-get': '/x' } },
    ]) {
      const { deps, runs } = fakeSystem(setup);
      await expect(ensureRedisServer(deps)).rejects.toThrow(RedisServerMissingError);
      expect(runs).toEqual([]);
    }
  });

  it('when apt-get fails: throws with the failure as cause and stops after the failing step', async () => {
    const { deps, runs } = fakeSystem({
      executables: { 'apt-get': '/usr/bin/apt-get' },
      root: true,
      failOn: 'update',
    });
    const error = (await ensureRedisServer(deps).catch((e: unknown) => e)) as RedisServerMissingError;
    expect(error).toBeInstanceOf(RedisServerMissingError);
    expect((error.cause as Error).message).toContain('update failed');
    expect(runs).toEqual(['/usr/bin/apt-get update']);
  });

  it('when the install succeeds but no redis-server appears: throws', async () => {
    const { deps } = fakeSystem({ executables: { 'apt-get': '/usr/bin/apt-get' }, root: true });
    await expect(ensureRedisServer(deps)).rejects.toThrow(/still not on PATH/);
  });
});
