import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RedisNodeAddress } from './config.ts';

/**
 * `.local/cluster.json`: written by `npm start` while it runs (docs/local-run.md) so that
 * `npm run worker` and `npm run report` find the local cluster when REDIS_NODES is unset.
 * It never holds a password.
 */
export interface LocalClusterFile {
  readonly nodes: readonly RedisNodeAddress[];
  readonly tls: boolean;
  readonly caFile: string | undefined;
  /** Process id of the runner that wrote it. */
  readonly pid: number;
}

export const LOCAL_CLUSTER_FILE = '.local/cluster.json';

export function localClusterFilePath(cwd = process.cwd()): string {
  return resolve(cwd, LOCAL_CLUSTER_FILE);
}

/** Reads the file when it exists and its writer is still alive; undefined otherwise. */
export function readLocalClusterFile(cwd = process.cwd()): LocalClusterFile | undefined {
  const path = localClusterFilePath(cwd);
  if (!existsSync(path)) return undefined;
  try {
    const data = JSON.parse(readFileSync(path, 'utf8')) as Partial<LocalClusterFile>;
    if (!Array.isArray(data.nodes) || typeof data.pid !== 'number') return undefined;
    try {
      process.kill(data.pid, 0);
    } catch {
      return undefined;
    }
    return { nodes: data.nodes, tls: data.tls === true, caFile: data.caFile, pid: data.pid };
  } catch {
    return undefined;
  }
}
