import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lowerHelperThreadPriority } from '../../../worker/helper-threads.ts';

const MODULE = fileURLToPath(new URL('../../../worker/helper-threads.ts', import.meta.url));

describe('lowerHelperThreadPriority', () => {
  it('sets the nice value of every thread but the main one, counting those that fail', () => {
    const set: [number, number][] = [];
    const result = lowerHelperThreadPriority(10, {
      threadIds: () => [100, 101, 102, 103],
      mainThreadId: 100,
      setNice: (threadId, nice) => {
        if (threadId === 103) throw new Error('ESRCH');
        set.push([threadId, nice]);
      },
    });
    expect(set).toEqual([
      [101, 10],
      [102, 10],
    ]);
    expect(result).toEqual({ lowered: 2, failed: 1 });
  });

  it('changes nothing where threads cannot be listed', () => {
    const result = lowerHelperThreadPriority(10, {
      threadIds: () => undefined,
      mainThreadId: 1,
      setNice: () => {
        throw new Error('not called');
      },
    });
    expect(result).toEqual({ lowered: 0, failed: 0 });
  });

  it('refuses a nice value outside [0, 19]', () => {
    const deps = { threadIds: () => [], mainThreadId: 1, setNice: () => {} };
    expect(() => lowerHelperThreadPriority(-1, deps)).toThrow(RangeError);
    expect(() => lowerHelperThreadPriority(20, deps)).toThrow(RangeError);
    expect(() => lowerHelperThreadPriority(2.5, deps)).toThrow(RangeError);
  });

  it.runIf(existsSync('/proc/self/task'))(
    'on Linux, lowers the helper threads of a real Node process and leaves its main thread as it was',
    () => {
      // A child process, so this test's own threads keep their priority. Field 19 of
      // /proc/<pid>/task/<tid>/stat is the thread's nice value.
      const script = `
        import { readdirSync, readFileSync } from 'node:fs';
        import { lowerHelperThreadPriority } from ${JSON.stringify(MODULE)};
        const nice = (tid) => Number(readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ')[16]);
        const mainBefore = nice(process.pid);
        const result = lowerHelperThreadPriority(10);
        const threads = readdirSync('/proc/self/task').map((tid) => ({ main: Number(tid) === process.pid, nice: nice(tid) }));
        console.log(JSON.stringify({ mainBefore, result, threads }));
      `;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8',
      });
      const { mainBefore, result, threads } = JSON.parse(out) as {
        mainBefore: number;
        result: { lowered: number; failed: number };
        threads: { main: boolean; nice: number }[];
      };
      const main = threads.filter((t) => t.main);
      const helpers = threads.filter((t) => !t.main);
      expect(main).toEqual([{ main: true, nice: mainBefore }]);
      expect(result.lowered).toBeGreaterThan(0);
      expect(result.failed).toBe(0);
      // Every thread that existed then was lowered; tsx or Node may have started more since.
      expect(helpers.filter((t) => t.nice === 10).length).toBeGreaterThanOrEqual(result.lowered);
    },
  );
});
