import { pathToFileURL } from 'node:url';
import type { Cluster } from 'ioredis';
import type { HandlerSpec } from '../../core/config.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import type { ExpiryHandler } from './expiry-handler.ts';
import { HandlerLoadError } from './handler-errors.ts';
import { logHandler } from './log-handler.ts';
import { clusterOutboxRedis, createStreamHandler } from './stream-handler.ts';

/**
 * Resolves HANDLER into a handler function.
 *
 * A module path is imported once (ESM dynamic import; a `.ts` module works under tsx). Its handler is
 * the default export when that is a function, else the named export `handle`.
 *
 * A module that throws at import, or exports no handler, does not stop the worker: it is reported once
 * (`handler.load_failed`, level error) and the returned handler rejects every call with that
 * HandlerLoadError. Events therefore keep flowing through the gate and each one this worker would have
 * handled is logged as `handler.failed` and counted in `HandlerFailures`, which is what alarms watch.
 * Leadership is unaffected (a restart with a fixed module is the remedy; ESM caches a failed import).
 */
export interface HandlerDeps {
  /** For HANDLER=stream: a client of the outbox's own (its WAIT may hold a connection up to its bound). */
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
}

export interface LoadedHandler {
  readonly handler: ExpiryHandler;
  /** `log`, `stream` or the module path: for the `worker.started` line. */
  readonly name: string;
  readonly loadError: HandlerLoadError | undefined;
}

export async function loadHandler(spec: HandlerSpec, deps: HandlerDeps): Promise<LoadedHandler> {
  if (spec.kind === 'log') return { handler: logHandler, name: 'log', loadError: undefined };
  if (spec.kind === 'stream') {
    return {
      handler: createStreamHandler({
        redis: clusterOutboxRedis(deps.cluster),
        keys: deps.keys,
        logger: deps.logger,
        metrics: deps.metrics,
      }),
      name: 'stream',
      loadError: undefined,
    };
  }
  let loadError: HandlerLoadError;
  try {
    const loaded: unknown = await import(pathToFileURL(spec.path).href);
    const handler = pickHandler(loaded);
    if (handler) return { handler, name: spec.path, loadError: undefined };
    loadError = new HandlerLoadError(
      spec.path,
      `${spec.path} exports no handler: expected a default export function or a named export "handle"`,
    );
  } catch (cause) {
    loadError = new HandlerLoadError(spec.path, `importing ${spec.path} failed`, { cause });
  }
  deps.logger.error('handler.load_failed', { path: spec.path, error: loadError });
  const failing: ExpiryHandler = () => {
    throw loadError;
  };
  return { handler: failing, name: spec.path, loadError };
}

function pickHandler(loaded: unknown): ExpiryHandler | undefined {
  if (typeof loaded !== 'object' || loaded === null) return undefined;
  const { default: fallback, handle } = loaded as { default?: unknown; handle?: unknown };
  if (typeof fallback === 'function') return fallback as ExpiryHandler;
  if (typeof handle === 'function') return handle as ExpiryHandler;
  return undefined;
}
