import { describe, expect, it } from 'vitest';
import { parseClusterOptions } from '../../../local/cluster-options.ts';
import { LocalClusterOptionsError } from '../../../local/errors.ts';

describe('parseClusterOptions', () => {
  it('defaults to 3 primaries x 1 replica, 1000 ms node timeout, no persistence, no events, no tls', () => {
    const options = parseClusterOptions();
    expect(options.notifyKeyspaceEvents).toBeUndefined();
    expect(options).toMatchObject({
      primaries: 3,
      replicasPerPrimary: 1,
      nodeTimeoutMs: 1000,
      persistence: 'off',
      extraArgs: [],
      tls: false,
      users: [],
      disableDefaultUser: false,
    });
  });

  it('lists every problem at once', () => {
    const error = (() => {
      try {
        parseClusterOptions({
          primaries: 0,
          nodeTimeoutMs: 10,
          users: [
            { name: 'default', password: 'x', access: '+@all' },
            { name: 'two words', password: 'has space', access: '+@all' },
            { name: 'twin', password: 'a', access: '' },
            { name: 'twin', password: 'b', access: '' },
          ],
        });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(LocalClusterOptionsError);
    const problems = (error as LocalClusterOptionsError).problems;
    expect(problems.join('\n')).toMatch(/^primaries:/m);
    expect(problems.join('\n')).toMatch(/^nodeTimeoutMs:/m);
    expect(problems.join('\n')).toMatch(/^users\.0\.name: .*reserved/m);
    expect(problems.join('\n')).toMatch(/^users\.1\.name:/m);
    expect(problems.join('\n')).toMatch(/^users\.1\.password:/m);
    expect(problems.join('\n')).toMatch(/duplicate user names: twin/);
  });

  it('refuses more than 32 nodes', () => {
    expect(() => parseClusterOptions({ primaries: 12, replicasPerPrimary: 2 })).toThrow(/36 nodes/);
  });
});
