import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Local TCP ports of the sockets a process holds open (Linux: /proc/<pid>/fd links `socket:[inode]`,
 * matched against /proc/<pid>/net/tcp and tcp6). Used to tell which CLIENT LIST entries on a primary
 * belong to one worker: every worker names its subscriber connections alike (`kl-subscriber`).
 * Throws when /proc cannot be read (not Linux, or the process is gone).
 */
export function tcpLocalPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1]) inodes.add(match[1]);
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const port of portsOfInodes(text, inodes)) ports.add(port);
  }
  return ports;
}

/** Local ports of the rows of a /proc/net/tcp table whose inode is in `inodes`. Pure. */
export function portsOfInodes(table: string, inodes: ReadonlySet<string>): number[] {
  const ports: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    const local = columns[1];
    const inode = columns[9];
    if (local === undefined || inode === undefined || !inodes.has(inode)) continue;
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port)) ports.push(port);
  }
  return ports;
}
