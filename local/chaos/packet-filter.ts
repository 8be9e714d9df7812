import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ChaosRunError } from './chaos-run.ts';

/**
 * Silences one TCP connection on the loopback interface without closing it: iptables rules that drop
 * every packet of that connection, both directions (on `lo` both pass the INPUT chain). Neither end
 * sees a FIN or a RST; the client's reads simply stop, like a half-open connection or a frozen
 * middlebox. Needs root and the `iptables` binary (.ci/run installs it as it installs redis-server).
 *
 * `drop` resolves with a handle whose `remove()` deletes exactly the rules it added (idempotent,
 * never throws: a rule already gone is fine). Remove it on every path, failures included.
 */

const run = promisify(execFile);
const IPTABLES = 'iptables';

export interface LoopbackConnection {
  /** The client's local port (the CLIENT LIST `addr` port on the server). */
  readonly clientPort: number;
  /** The server's port. */
  readonly serverPort: number;
}

export interface DroppedConnection {
  readonly rules: readonly string[];
  remove(): Promise<void>;
}

function ruleSpecs(connection: LoopbackConnection): string[][] {
  const common = ['-i', 'lo', '-p', 'tcp'];
  return [
    [
      ...common,
      '--sport',
      String(connection.clientPort),
      '--dport',
      String(connection.serverPort),
      '-j',
      'DROP',
    ],
    [
      ...common,
      '--sport',
      String(connection.serverPort),
      '--dport',
      String(connection.clientPort),
      '-j',
      'DROP',
    ],
  ];
}

export async function dropConnection(connection: LoopbackConnection): Promise<DroppedConnection> {
  const specs = ruleSpecs(connection);
  const added: string[][] = [];
  const remove = async () => {
    for (const spec of added.splice(0)) {
      try {
        await run(IPTABLES, ['-D', 'INPUT', ...spec]);
      } catch {
        // Already gone (removed by hand, or the table was flushed): nothing left to undo.
      }
    }
  };
  try {
    for (const spec of specs) {
      await run(IPTABLES, ['-I', 'INPUT', ...spec]);
      added.push(spec);
    }
  } catch (error) {
    await remove();
    throw new ChaosRunError(
      `cannot add iptables rules (this scenario needs root and iptables: apt-get install -y iptables): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return { rules: specs.map((spec) => spec.join(' ')), remove };
}
