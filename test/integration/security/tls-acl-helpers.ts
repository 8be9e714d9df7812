import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LocalRedisCluster } from '../../../local/cluster.ts';
import { REPO_ROOT } from '../worker/helpers.ts';

/** Helpers for the security integration tests (TLS-only cluster, ACL users, default user off). */

/** A password nobody else uses: searched for in everything the programs print. */
export function randomPassword(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

/** Environment for a worker or the report as one ACL user, over TLS with the cluster's CA. */
export function tlsUserEnv(
  cluster: LocalRedisCluster,
  user: { name: string; password: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    REDIS_NODES: cluster.seeds.map((s) => `${s.host}:${s.port}`).join(','),
    REDIS_TLS: 'true',
    REDIS_TLS_CA_FILE: cluster.caFile as string,
    REDIS_USERNAME: user.name,
    REDIS_PASSWORD: user.password,
    HEALTH_PORT: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

export interface CommandRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`) and keeps everything it printed. */
export function runCommand(
  command: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<CommandRun> {
  return new Promise((resolve) => {
    const child = spawn(command[0] as string, command.slice(1), {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `npm run report -- --json` without npm's overhead: the same file the script runs. */
export function runReport(env: Record<string, string>): Promise<CommandRun> {
  return runCommand([process.execPath, '--import', 'tsx', 'lambdas/notify-check/cli.ts', '--json'], env);
}

/** One ACL LOG entry, flattened. */
export interface AclLogEntry {
  readonly node: number;
  readonly count: number;
  readonly reason: string;
  readonly context: string;
  readonly object: string;
  readonly username: string;
}

function entryOf(node: number, raw: unknown): AclLogEntry {
  const fields = new Map<string, string>();
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) fields.set(String(raw[i]), String(raw[i + 1]));
  } else if (raw instanceof Map) {
    for (const [k, v] of raw) fields.set(String(k), String(v));
  }
  return {
    node,
    count: Number(fields.get('count') ?? 0),
    reason: fields.get('reason') ?? '',
    context: fields.get('context') ?? '',
    object: fields.get('object') ?? '',
    username: fields.get('username') ?? '',
  };
}

/** Runs `fn` with an admin connection to every running node, one after the other. */
export async function forEachNode(
  cluster: LocalRedisCluster,
  fn: (client: Redis, port: number) => Promise<void>,
): Promise<void> {
  for (const node of cluster.nodes) {
    if (node.state !== 'running') continue;
    const client = cluster.nodeClient(node.port);
    try {
      await fn(client, node.port);
    } finally {
      client.disconnect();
    }
  }
}

/** Every node's ACL LOG (refused commands, keys and channels, by user). */
export async function aclLog(cluster: LocalRedisCluster): Promise<AclLogEntry[]> {
  const entries: AclLogEntry[] = [];
  await forEachNode(cluster, async (client, port) => {
    const log = (await client.call('ACL', 'LOG', '1000')) as unknown[];
    for (const raw of log) entries.push(entryOf(port, raw));
  });
  return entries;
}

export async function resetAclLog(cluster: LocalRedisCluster): Promise<void> {
  await forEachNode(cluster, async (client) => {
    await client.call('ACL', 'LOG', 'RESET');
  });
}
