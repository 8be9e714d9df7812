import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/logger.ts';
import type { Coverage } from './expiry/subscriber-pool.ts';

/**
 * `GET /healthz` on 127.0.0.1 (HEALTH_PORT; 0 disables it, main.ts then does not start this server).
 * 200 when the cluster client is ready and every known primary is subscribed, else 503; the JSON body
 * shows the coverage either way. Leadership does not enter into it: a healthy follower is healthy.
 * Bound to loopback only: the ECS container health check runs inside the task.
 */
export interface HealthStatus {
  readonly clusterReady: boolean;
  readonly coverage: Coverage;
  readonly isLeader: boolean;
}

export interface HealthReport {
  readonly statusCode: 200 | 503;
  readonly body: {
    readonly status: 'ok' | 'unavailable';
    readonly clusterReady: boolean;
    readonly isLeader: boolean;
    readonly subscribedPrimaries: number;
    readonly knownPrimaries: number;
    readonly primaries: Coverage['primaries'];
  };
}

export function evaluateHealth(status: HealthStatus): HealthReport {
  const healthy = status.clusterReady && status.coverage.complete;
  return {
    statusCode: healthy ? 200 : 503,
    body: {
      status: healthy ? 'ok' : 'unavailable',
      clusterReady: status.clusterReady,
      isLeader: status.isLeader,
      subscribedPrimaries: status.coverage.subscribed,
      knownPrimaries: status.coverage.known,
      primaries: status.coverage.primaries,
    },
  };
}

export interface HealthServerOptions {
  readonly status: () => HealthStatus;
  readonly logger: Logger;
  readonly host?: string;
}

export class HealthServer {
  private readonly server: Server;
  private listening = false;

  constructor(private readonly options: HealthServerOptions) {
    this.server = createServer((request, response) => this.respond(request, response));
    this.server.on('error', (error) => this.options.logger.warn('health.error', { error }));
    // A probe must never keep shutdown waiting.
    this.server.keepAliveTimeout = 1000;
  }

  /** Listens on `port` (0: any free port) and resolves with the port bound. */
  listen(port: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', onError);
        this.listening = true;
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and closes open connections. Idempotent. */
  async close(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private respond(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/healthz') {
      this.send(response, 404, { status: 'not-found' });
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      this.send(response, 405, { status: 'method-not-allowed' });
      return;
    }
    let report: HealthReport;
    try {
      report = evaluateHealth(this.options.status());
    } catch (error) {
      this.options.logger.warn('health.error', { error });
      this.send(response, 503, { status: 'unavailable' });
      return;
    }
    this.send(response, report.statusCode, report.body, request.method === 'HEAD');
  }

  private send(response: ServerResponse, statusCode: number, body: unknown, headOnly = false): void {
    const text = JSON.stringify(body);
    response.writeHead(statusCode, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    response.end(headOnly ? undefined : text);
  }
}
