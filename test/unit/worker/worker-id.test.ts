import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveWorkerIdentity } from '../../../worker/worker-id.ts';

const ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/kl/0123456789abcdef';

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

describe('resolveWorkerIdentity', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('prefers WORKER_ID, and still records the task ARN when in ECS', async () => {
    const fetch = vi.fn(async () => jsonResponse({ TaskARN: ARN }));
    const identity = await resolveWorkerIdentity({
      workerId: 'w-1',
      metadataUri: 'http://169.254.170.2/v4/abc',
      fetch,
    });
    expect(identity).toEqual({ workerId: 'w-1', taskArn: ARN, source: 'env', metadataError: undefined });
    expect(fetch).toHaveBeenCalledWith('http://169.254.170.2/v4/abc/task', expect.anything());
  });

  it('uses the ECS task ARN when WORKER_ID is unset', async () => {
    const identity = await resolveWorkerIdentity({
      workerId: undefined,
      metadataUri: 'http://169.254.170.2/v4/abc/',
      fetch: async () => jsonResponse({ TaskARN: ARN }),
    });
    expect(identity).toMatchObject({ workerId: ARN, taskArn: ARN, source: 'ecs' });
  });

  it('falls back to hostname-pid outside ECS without any request', async () => {
    const fetch = vi.fn();
    const identity = await resolveWorkerIdentity({
      workerId: undefined,
      metadataUri: undefined,
      fetch,
      hostname: () => 'box',
      pid: 42,
    });
    expect(identity).toEqual({ workerId: 'box-42', taskArn: null, source: 'host', metadataError: undefined });
    expect(fetch).not.toHaveBeenCalled();
  });

  it('falls back when the endpoint answers an error or no TaskARN', async () => {
    const base = { workerId: undefined, metadataUri: 'http://meta', hostname: () => 'box', pid: 7 };
    const failed = await resolveWorkerIdentity({ ...base, fetch: async () => jsonResponse({}, 500) });
    expect(failed).toMatchObject({
      workerId: 'box-7',
      taskArn: null,
      source: 'host',
      metadataError: expect.stringContaining('HTTP 500'),
    });
    const noArn = await resolveWorkerIdentity({ ...base, fetch: async () => jsonResponse({ Cluster: 'x' }) });
    expect(noArn).toMatchObject({ workerId: 'box-7', metadataError: expect.stringContaining('TaskARN') });
  });

  it('gives up on a slow endpoint after the timeout', async () => {
    const fetch = vi.fn(
      (_url: string | URL | Request, init?: RequestInit) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    );
    const pending = resolveWorkerIdentity({
      workerId: undefined,
      metadataUri: 'http://meta',
      fetch: fetch as unknown as typeof globalThis.fetch,
      timeoutMs: 1000,
      hostname: () => 'box',
      pid: 9,
    });
    await vi.advanceTimersByTimeAsync(1000);
    await expect(pending).resolves.toMatchObject({
      workerId: 'box-9',
      metadataError: 'ECS task metadata request did not complete within 1000 ms',
    });
  });
});
