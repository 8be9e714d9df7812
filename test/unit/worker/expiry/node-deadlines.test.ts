import { describe, expect, it } from 'vitest';
import { nodeDeadlines } from '../../../../worker/expiry/node-deadlines.ts';

/** Keys named `<owner>:<n>`; `?` owns nothing (no owner in the slot map). */
const owner = (key: Buffer) => {
  const name = key.toString().split(':')[0];
  return name === '?' ? undefined : name;
};
const keys = (...names: string[]) => names.map((n) => Buffer.from(n));

describe('nodeDeadlines: one call per primary, the Cluster client for the rest', () => {
  it('groups the keys by owner, one call each, and answers in the order asked', async () => {
    const calls: [string, string[]][] = [];
    const lookup = nodeDeadlines({
      ownerOf: owner,
      onNode: async (nodeId, batch) => {
        calls.push([nodeId, batch.map(String)]);
        return batch.map((k) => Number(k.toString().split(':')[1]));
      },
      fallback: async () => {
        throw new Error('not used');
      },
    });
    expect(await lookup(keys('a:1', 'b:2', 'a:3', 'c:4', 'b:5'))).toEqual([1, 2, 3, 4, 5]);
    expect(calls).toEqual([
      ['a', ['a:1', 'a:3']],
      ['b', ['b:2', 'b:5']],
      ['c', ['c:4']],
    ]);
  });

  it('sends to the Cluster client the keys without an owner, of a failed call, and answered with an error', async () => {
    const fellBack: string[][] = [];
    const lookup = nodeDeadlines({
      ownerOf: owner,
      onNode: async (nodeId, batch) => {
        if (nodeId === 'down') throw new Error('no connection to down');
        return batch.map((k) => (k.toString() === 'a:moved' ? new Error('MOVED 1 x:1') : 7));
      },
      fallback: async (batch) => {
        fellBack.push(batch.map(String));
        return batch.map(() => 9);
      },
    });
    expect(await lookup(keys('a:1', '?:2', 'down:3', 'a:moved', 'down:4'))).toEqual([7, 9, 9, 9, 9]);
    expect(fellBack).toHaveLength(1);
    expect(new Set(fellBack[0])).toEqual(new Set(['?:2', 'down:3', 'a:moved', 'down:4']));
  });

  it('never rejects: a failed fallback answers its error for each of its keys', async () => {
    const lookup = nodeDeadlines({
      ownerOf: () => undefined,
      onNode: async () => [],
      fallback: async () => {
        throw new Error('CLUSTERDOWN');
      },
    });
    const results = await lookup(keys('x', 'y'));
    expect(results).toHaveLength(2);
    for (const result of results) expect(result).toBeInstanceOf(Error);
    expect(await lookup([])).toEqual([]);
  });
});
