import { describe, expect, it } from 'vitest';
import {
  ChaosArgumentsError,
  chaosHelpText,
  parseChaosArgs,
} from '../../../../local/chaos/parse-chaos-args.ts';

const names = ['leader-sigkill', 'slow-handler'];

const problemsOf = (argv: string[]): readonly string[] => {
  try {
    parseChaosArgs(argv, names);
  } catch (error) {
    if (error instanceof ChaosArgumentsError) return error.problems;
    throw error;
  }
  throw new Error('no error');
};

describe('parseChaosArgs', () => {
  it('takes one scenario with the defaults left to the scenario', () => {
    expect(parseChaosArgs(['leader-sigkill'], names)).toEqual({
      kind: 'run',
      scenarios: ['leader-sigkill'],
      rate: undefined,
      durationS: undefined,
      json: false,
    });
  });

  it('takes --rate, --duration, --json, and all', () => {
    expect(parseChaosArgs(['all', '--rate', '500', '--duration', '7.5', '--json'], names)).toEqual({
      kind: 'run',
      scenarios: names,
      rate: 500,
      durationS: 7.5,
      json: true,
    });
  });

  it('answers --list and --help before anything else', () => {
    expect(parseChaosArgs(['--list'], names)).toEqual({ kind: 'list' });
    expect(parseChaosArgs(['nope', '-h'], names)).toEqual({ kind: 'help' });
    expect(chaosHelpText(names)).toContain('leader-sigkill, slow-handler');
  });

  it('lists every problem at once', () => {
    expect(problemsOf(['nope', '--rate', '0', '--duration', 'x'])).toEqual([
      '--rate must be an integer in (0, 20000], got "0"',
      '--duration must be a number in (0, 600], got "x"',
      'unknown scenario "nope"; one of leader-sigkill, slow-handler, or all',
    ]);
    expect(problemsOf([])).toEqual(['name a scenario (leader-sigkill, slow-handler) or all']);
    expect(problemsOf(['leader-sigkill', 'slow-handler'])).toEqual([
      'one scenario at a time (or all), got leader-sigkill slow-handler',
    ]);
    expect(problemsOf(['leader-sigkill', '--rate', '2.5'])).toEqual([
      '--rate must be an integer in (0, 20000], got "2.5"',
    ]);
  });

  it('refuses unknown options', () => {
    expect(problemsOf(['leader-sigkill', '--fast'])[0]).toMatch(/Unknown option '--fast'/);
  });
});
