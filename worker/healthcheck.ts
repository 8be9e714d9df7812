/**
 * Container health check (ECS `healthCheck` command): asks the worker's own health endpoint,
 * `GET http://127.0.0.1:${HEALTH_PORT}/healthz` (default port 8081). Exit 0 on HTTP 200 (connected
 * and subscribed to every known primary), 1 on anything else: 503, a timeout (2 s), a refused
 * connection or an invalid HEALTH_PORT. Standalone on purpose: it starts a fresh Node process every
 * interval, so it imports nothing beyond Node itself.
 */
import { pathToFileURL } from 'node:url';

export const DEFAULT_HEALTH_PORT = 8081;
export const HEALTH_TIMEOUT_MS = 2000;

export class HealthPortError extends Error {
  constructor(readonly value: string) {
    super(`HEALTH_PORT must be an integer 1-65535, got ${JSON.stringify(value)}`);
    this.name = 'HealthPortError';
  }
}

/** The health URL for an environment; throws HealthPortError when HEALTH_PORT is unusable. */
export function healthUrl(env: NodeJS.ProcessEnv): string {
  const raw = env.HEALTH_PORT?.trim();
  if (raw === undefined || raw === '') return `http://127.0.0.1:${DEFAULT_HEALTH_PORT}/healthz`;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new HealthPortError(raw);
  return `http://127.0.0.1:${port}/healthz`;
}

export type HealthResult = { readonly healthy: true } | { readonly healthy: false; readonly reason: string };

/** One probe: healthy only on status 200 within `timeoutMs`. Never throws. */
export async function probe(url: string, timeoutMs: number = HEALTH_TIMEOUT_MS): Promise<HealthResult> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.status === 200
      ? { healthy: true }
      : { healthy: false, reason: `HTTP ${response.status}` };
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { healthy: false, reason };
  }
}

/** Runs the check against the process environment and returns the exit code. */
export async function runHealthcheck(env: NodeJS.ProcessEnv = process.env): Promise<0 | 1> {
  let url: string;
  try {
    url = healthUrl(env);
  } catch (error) {
    process.stderr.write(`healthcheck: ${(error as Error).message}\n`);
    return 1;
  }
  const result = await probe(url);
  if (result.healthy) return 0;
  process.stderr.write(`healthcheck: unhealthy (${result.reason})\n`);
  return 1;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  // Exit explicitly: a kept-alive socket must not hold the probe open past the ECS timeout.
  process.exit(await runHealthcheck());
}
