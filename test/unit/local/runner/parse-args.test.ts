import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RUNNER_OPTIONS,
  HELP_TEXT,
  parseRunnerArgs,
  RunnerArgumentsError,
} from '../../../../local/runner/parse-args.ts';

function options(argv: string[]) {
  const parsed = parseRunnerArgs(argv);
  if (parsed.kind !== 'run') throw new Error(`expected run, got ${parsed.kind}`);
  return parsed.options;
}

function problems(argv: string[]): readonly string[] {
  try {
    parseRunnerArgs(argv);
  } catch (error) {
    if (error instanceof RunnerArgumentsError) return error.problems;
    throw error;
  }
  throw new Error('expected RunnerArgumentsError');
}

describe('parseRunnerArgs', () => {
  it('defaults to the live view of 3 workers on 3 primaries with 1 replica each, 50 keys/s, no end', () => {
    expect(options([])).toEqual(DEFAULT_RUNNER_OPTIONS);
    expect(DEFAULT_RUNNER_OPTIONS).toMatchObject({
      plain: false,
      forSeconds: undefined,
      workers: 3,
      primaries: 3,
      replicasPerPrimary: 1,
      keysPerSecond: 50,
    });
  });

  it('reads --plain --for 20 (the form README.md, "Commands", names) and --for=20', () => {
    expect(options(['--plain', '--for', '20'])).toMatchObject({ plain: true, forSeconds: 20 });
    expect(options(['--for=2.5'])).toMatchObject({ plain: false, forSeconds: 2.5 });
  });

  it('reads the sizing and rate options', () => {
    expect(
      options(['--workers', '5', '--primaries', '4', '--replicas', '0', '--rate', '1000', '--ttl-ms', '500']),
    ).toMatchObject({ workers: 5, primaries: 4, replicasPerPrimary: 0, keysPerSecond: 1000, keyTtlMs: 500 });
    expect(
      options(['--leader-name', 'demo-1', '--handler', './my-handler.ts', '--interval', '1']),
    ).toMatchObject({
      leaderName: 'demo-1',
      handler: './my-handler.ts',
      plainIntervalSeconds: 1,
    });
  });

  it('reads --tls (off by default) and rejects a value for it', () => {
    expect(DEFAULT_RUNNER_OPTIONS.tls).toBe(false);
    expect(options(['--plain', '--tls', '--for', '10'])).toMatchObject({
      plain: true,
      tls: true,
      forSeconds: 10,
    });
    expect(problems(['--tls=yes'])[0]).toMatch(/--tls/);
  });

  it('answers --help and -h with the help text, which lists every option and key', () => {
    expect(parseRunnerArgs(['--help'])).toEqual({ kind: 'help', text: HELP_TEXT });
    expect(parseRunnerArgs(['-h', '--workers', '2'])).toEqual({ kind: 'help', text: HELP_TEXT });
    for (const word of [
      '--plain',
      '--for',
      '--workers',
      '--primaries',
      '--replicas',
      '--rate',
      '--tls',
      'SIGKILL',
      'SIGTERM',
    ]) {
      expect(HELP_TEXT).toContain(word);
    }
  });

  it('lists every invalid value at once', () => {
    const found = problems(['--workers', '0', '--rate', 'fast', '--for=0', '--replicas', '7']);
    expect(found).toHaveLength(4);
    expect(found.join('\n')).toMatch(/--workers must be >= 1/);
    expect(found.join('\n')).toMatch(/--rate must be a whole number/);
    expect(found.join('\n')).toMatch(/--for must be > 0/);
    expect(found.join('\n')).toMatch(/--replicas must be <= 2/);
  });

  it('reads --volatile (0 by default, at most 1,000,000)', () => {
    expect(DEFAULT_RUNNER_OPTIONS.volatileKeys).toBe(0);
    expect(options(['--volatile', '100000'])).toMatchObject({ volatileKeys: 100_000 });
    expect(problems(['--volatile', '1000001'])).toEqual(['--volatile must be <= 1000000']);
    expect(problems(['--volatile', 'many'])).toEqual(['--volatile must be a whole number']);
    expect(HELP_TEXT).toContain('--volatile <n>');
  });

  it('rejects unknown options, positionals and a missing value', () => {
    expect(problems(['--colour'])[0]).toMatch(/colour/);
    expect(problems(['start'])[0]).toMatch(/start/);
    expect(problems(['--for'])[0]).toMatch(/--for/);
  });

  it('rejects a leader name that cannot be part of a hash tag', () => {
    expect(problems(['--leader-name', 'a b'])[0]).toMatch(/--leader-name/);
  });
});
