import { describe, expect, it } from 'vitest';
import { findFreePorts, PORT_RANGE } from '../../../local/free-port.ts';

/** Random values that land on `ports` in order (inverse of the mapping in findFreePorts). */
function randomFor(ports: number[]): () => number {
  const span = PORT_RANGE.last - PORT_RANGE.first + 1;
  let index = 0;
  return () => ((ports[index++ % ports.length] as number) - PORT_RANGE.first + 0.5) / span;
}

describe('findFreePorts', () => {
  it('skips busy ports, never hands out a port twice, and stays in the range', async () => {
    const busy = new Set([20010]);
    const probed: number[] = [];
    const deps = {
      isPortFree: async (port: number) => {
        probed.push(port);
        return !busy.has(port);
      },
      random: randomFor([20010, 20011, 20011, 20012, 20013]),
    };
    expect(await findFreePorts(2, deps)).toEqual([20011, 20012]);
    // 20011 and 20012 were handed out, 20010 is known busy: the next call moves on.
    expect(await findFreePorts(1, deps)).toEqual([20013]);
    expect(probed).toEqual([20010, 20011, 20012, 20013]);
    expect(PORT_RANGE.last + 10_000).toBeLessThan(65_536);
  });

  it('gives up with a typed error when nothing is free', async () => {
    const deps = { isPortFree: async () => false, random: Math.random };
    await expect(findFreePorts(1, deps)).rejects.toMatchObject({ code: 'LOCAL_CLUSTER_STATE' });
  });
});
