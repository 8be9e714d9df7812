import { describe, expect, it } from 'vitest';
import { parseSchedstat, threadSchedules } from '../../../bench/cpu-usage.ts';

describe('schedstat readings', () => {
  it('reads on-CPU and run-queue wait time (ns) of one thread as ms', () => {
    expect(parseSchedstat('380722202 37322466 894\n')).toEqual({ runMs: 380.722202, waitMs: 37.322466 });
    expect(parseSchedstat('')).toBeUndefined();
    expect(parseSchedstat('12 x 3')).toBeUndefined();
  });

  it("lists this process's threads, its main thread first, with growing run time", () => {
    const before = threadSchedules(process.pid);
    if (before === undefined) return; // no /proc (not Linux): the bench reports no CPU budget
    let spin = 0;
    for (let i = 0; i < 5e6; i++) spin += i;
    const after = threadSchedules(process.pid) ?? [];
    expect(spin).toBeGreaterThan(0);
    expect(after[0]?.tid).toBe(process.pid);
    expect((after[0]?.runMs ?? 0) - (before[0]?.runMs ?? 0)).toBeGreaterThan(0);
  });
});
