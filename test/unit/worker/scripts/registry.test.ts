import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { workerGrants } from '../../../../core/acl.ts';
import { outboxAppend } from '../../../../worker/scripts/outbox-append.ts';
import { outboxTrim } from '../../../../worker/scripts/outbox-trim.ts';
import { SCRIPTS, scriptsOn } from '../../../../worker/scripts/registry.ts';
import { FencedTokenError, ScriptReplyError } from '../../../../worker/scripts/script-errors.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '../../../..');

/** The header comment (`--[[ ... ]]`) a script starts with (after its `#!lua` flags line), or undefined. */
function headerOf(lua: string): string | undefined {
  return /^(?:#!lua[^\n]*\n)?--\[\[([\s\S]*?)\]\]\n/.exec(lua)?.[1];
}

/** Indexes `i` of `NAME[i]` in `text`, sorted, unique. */
function indexes(text: string, name: 'KEYS' | 'ARGV'): number[] {
  const found = [...text.matchAll(new RegExp(`${name}\\[(\\d+)\\]`, 'g'))].map((m) => Number(m[1]));
  return [...new Set(found)].sort((a, b) => a - b);
}

/** Commands a script runs (`redis.call('XINFO', 'GROUPS', ...)` -> `xinfo|groups`), as ACL names. */
function commandsOf(lua: string): string[] {
  const calls = [...lua.matchAll(/redis\.call\('([A-Z]+)'(?:, '([A-Z]+)')?/g)];
  return calls.map(([, command, sub]) =>
    (command === 'XINFO' || command === 'MEMORY') && sub
      ? `${command.toLowerCase()}|${sub.toLowerCase()}`
      : (command as string).toLowerCase(),
  );
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return name === 'node_modules' ? [] : sourceFiles(file);
    return file.endsWith('.ts') ? [file] : [];
  });
}

describe('the script registry (worker/scripts/)', () => {
  it('has a unique name and command per script', () => {
    expect(new Set(SCRIPTS.map((s) => s.name)).size).toBe(SCRIPTS.length);
    expect(new Set(SCRIPTS.map((s) => s.command)).size).toBe(SCRIPTS.length);
    for (const s of SCRIPTS) {
      expect(s.name, s.name).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(s.command, s.name).toMatch(/^kl[A-Z][A-Za-z]+$/);
    }
  });

  it.each(SCRIPTS.map((s) => [s.name, s] as const))(
    '%s: a header with KEYS, ARGV and Returns; numberOfKeys matches the KEYS it documents',
    (_name, script) => {
      const header = headerOf(script.lua);
      expect(header, 'header comment --[[ ... ]] first').toBeDefined();
      const text = header as string;
      expect(text).toMatch(/\bReturns\b/);
      const keys = indexes(text, 'KEYS');
      // KEYS[1]..KEYS[n], each on its own line with a description, and n = numberOfKeys.
      expect(keys).toEqual(Array.from({ length: script.numberOfKeys }, (_, i) => i + 1));
      for (const i of keys) expect(text).toMatch(new RegExp(`^\\s*KEYS\\[${i}\\] \\S`, 'm'));
      const argv = indexes(text, 'ARGV');
      expect(argv.length).toBeGreaterThan(0);
      expect(argv).toEqual(Array.from({ length: argv.length }, (_, i) => i + 1));
      // The body uses no key or argument the header leaves out (ARGV[n...] documents the rest).
      const body = script.lua.slice(script.lua.indexOf(']]'));
      expect(Math.max(0, ...indexes(body, 'KEYS'))).toBeLessThanOrEqual(script.numberOfKeys);
      const open = /ARGV\[\d+\.\.\.\]/.test(text);
      if (!open) expect(Math.max(0, ...indexes(body, 'ARGV'))).toBeLessThanOrEqual(Math.max(...argv));
    },
  );

  it("grants the worker's ACL every command a script runs (key-deadlines and value-read run only with precise expiry)", () => {
    const granted = new Set(workerGrants(true).map((g) => g.command));
    const used = new Set(SCRIPTS.flatMap((s) => commandsOf(s.lua)));
    expect(used.size).toBeGreaterThan(10);
    for (const command of used) expect(granted.has(command), command).toBe(true);
    // HGETALL only where the whole hash is needed; the release reads one field.
    expect(commandsOf(SCRIPTS.find((s) => s.name === 'coverage-release')?.lua ?? '')).toEqual([
      'hget',
      'hdel',
    ]);
  });

  it('is the only place Lua lives: no script text, EVAL or EVALSHA elsewhere in worker/, core/, lambdas/, local/', () => {
    const offenders = ['worker', 'core', 'lambdas', 'local']
      .flatMap((dir) => sourceFiles(path.join(REPO_ROOT, dir)))
      .filter((file) => !file.includes(`${path.sep}worker${path.sep}scripts${path.sep}`))
      .filter((file) => /redis\.call\(|\.eval\(|\.evalsha\(|pipeline\.eval/.test(readFileSync(file, 'utf8')));
    expect(offenders.map((f) => path.relative(REPO_ROOT, f))).toEqual([]);
  });

  it('defines every script once per client (defineCommand), however many modules ask', () => {
    const defined: [string, number][] = [];
    const client = {
      defineCommand: (name: string, definition: { lua: string; numberOfKeys: number }) => {
        defined.push([name, definition.numberOfKeys]);
      },
    } as unknown as Cluster;
    expect(scriptsOn(client)).toBe(scriptsOn(client));
    expect(defined).toEqual(SCRIPTS.map((s) => [s.command, s.numberOfKeys]));
  });

  it('runs a script by its command and parses the reply in one place; refuses a wrong number of keys', async () => {
    const calls: unknown[][] = [];
    const client = {
      defineCommand: () => {},
      klOutboxTrim: async (...args: unknown[]) => {
        calls.push(args);
        return [2, 5, 1];
      },
    } as unknown as Cluster;
    const scripts = scriptsOn(client);
    expect(await scripts.run(outboxTrim, ['s'], ['100'])).toEqual({
      groups: 2,
      trimmedRead: 5,
      trimmedUnread: 1,
    });
    expect(calls).toEqual([['s', '100']]);
    await expect(scripts.run(outboxTrim, ['a', 'b'], ['100'])).rejects.toBeInstanceOf(TypeError);
    expect(() => outboxTrim.parse('OK')).toThrow(ScriptReplyError);
  });

  it("maps a script's own error reply to its typed error, with the reply as cause; others pass as they came", async () => {
    const fenced = new Error('FENCED token 3 is below 4');
    const moved = new Error('MOVED 1234 127.0.0.1:7001');
    let reply: Error = fenced;
    const client = {
      defineCommand: () => {},
      klOutboxAppend: async () => Promise.reject(reply),
    } as unknown as Cluster;
    const scripts = scriptsOn(client);
    const error = await scripts
      .run(outboxAppend, ['s', 'f'], ['1', '0', '', '0', 'id', 'x'])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FencedTokenError);
    expect((error as FencedTokenError).cause).toBe(fenced);
    reply = moved;
    await expect(scripts.run(outboxAppend, ['s', 'f'], ['1', '0', '', '0', 'id', 'x'])).rejects.toBe(moved);
    expect(outboxAppend.parse(['1-0', 0])).toEqual({ streamId: '1-0', appended: false });
    expect(() => outboxAppend.parse(['1-0', 2])).toThrow(ScriptReplyError);
  });
});
