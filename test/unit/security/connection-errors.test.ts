import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../core/logger.ts';
import {
  attachErrorLogging,
  classifyConnectionError,
  ERROR_REPEAT_INTERVAL_MS,
  rootConnectionError,
} from '../../../core/redis-client.ts';
import { decodeStrict } from '../../support/log-capture.ts';

/** Errors shaped as ioredis and Node produce them (class and `code`, as the classifier reads them). */
const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
const codeError = (message: string, code: string) => Object.assign(new Error(message), { code });
const clusterAllFailed = (last: Error) =>
  Object.assign(new Error('Failed to refresh slots cache.'), {
    name: 'ClusterAllFailedError',
    lastNodeError: last,
  });

const WRONGPASS = replyError('WRONGPASS invalid username-password pair or user is disabled.');
const NOPERM = replyError("NOPERM this user has no permissions to run the 'cluster|slots' command");
const UNTRUSTED = codeError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN');
const ALTNAME = codeError(
  "Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1",
  'ERR_TLS_CERT_ALTNAME_INVALID',
);
const CLOSED = new Error('Connection is closed.');

function setup(options: { diagnose?: () => Promise<{ error: Error; node: string } | undefined> } = {}) {
  const lines: Record<string, unknown>[] = [];
  let nowMs = 1_000_000;
  const emitter = new EventEmitter();
  const logger = createLogger({ write: (line) => lines.push(decodeStrict(line)) });
  attachErrorLogging(
    emitter,
    logger,
    { client: 'worker' },
    { nodeErrors: true, now: () => nowMs, ...options },
  );
  return {
    lines,
    emitter,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

describe('classifyConnectionError', () => {
  it('names each misconfiguration by its error code, through a Cluster wrapper too', () => {
    expect(classifyConnectionError(WRONGPASS)).toBe('authentication');
    expect(classifyConnectionError(replyError('NOAUTH Authentication required.'))).toBe('authentication');
    expect(classifyConnectionError(NOPERM)).toBe('permission');
    expect(classifyConnectionError(UNTRUSTED)).toBe('tls-certificate');
    expect(classifyConnectionError(codeError('unable to verify', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'))).toBe(
      'tls-certificate',
    );
    expect(classifyConnectionError(ALTNAME)).toBe('tls-hostname');
    expect(classifyConnectionError(codeError('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe(
      'unreachable',
    );
    expect(classifyConnectionError(CLOSED)).toBe('other');
    expect(classifyConnectionError(clusterAllFailed(WRONGPASS))).toBe('authentication');
    expect(rootConnectionError(clusterAllFailed(UNTRUSTED))).toBe(UNTRUSTED);
    // A message that merely mentions a code is not that code.
    expect(classifyConnectionError(new Error('the password was WRONGPASS'))).toBe('other');
  });
});

describe('attachErrorLogging', () => {
  it('writes one line naming the cause for a retry storm, and the root error instead of the wrapper', () => {
    const { lines, emitter } = setup();
    for (let i = 0; i < 50; i++) {
      emitter.emit('node error', WRONGPASS, '127.0.0.1:7000');
      emitter.emit('error', clusterAllFailed(WRONGPASS));
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      event: 'redis.error',
      level: 'warn',
      client: 'worker',
      node: '127.0.0.1:7000',
      problem: 'authentication',
      error: { message: expect.stringMatching(/^WRONGPASS/) },
    });
    expect(lines[0]?.hint).toMatch(/REDIS_PASSWORD/);
  });

  it('repeats a persisting cause once a minute with the count of repeats, and starts afresh on ready', () => {
    const { lines, emitter, advance } = setup();
    emitter.emit('error', NOPERM);
    for (let i = 0; i < 20; i++) {
      advance(1000);
      emitter.emit('error', NOPERM);
    }
    expect(lines).toHaveLength(1);
    advance(ERROR_REPEAT_INTERVAL_MS);
    emitter.emit('error', NOPERM);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ problem: 'permission', repeated: 20 });
    emitter.emit('ready');
    emitter.emit('error', NOPERM);
    expect(lines).toHaveLength(3);
    expect(lines[2]?.repeated).toBeUndefined();
  });

  it('does not add a cause-less line after a classified one, and bounds the lines per minute', () => {
    const { lines, emitter } = setup();
    emitter.emit('node error', UNTRUSTED, '127.0.0.1:7000');
    emitter.emit('error', clusterAllFailed(CLOSED));
    expect(lines.map((l) => l.problem)).toEqual(['tls-certificate']);
    for (let i = 0; i < 30; i++)
      emitter.emit('node error', codeError(`connect ECONNREFUSED 127.0.0.1:${i}`, 'ECONNREFUSED'));
    expect(lines).toHaveLength(10);
  });

  it('replaces a cause-less Cluster error by one diagnosis through a direct connection', async () => {
    let probes = 0;
    const { lines, emitter } = setup({
      diagnose: async () => {
        probes++;
        return { error: ALTNAME, node: '127.0.0.2:7000' };
      },
    });
    for (let i = 0; i < 5; i++) {
      emitter.emit('node error', CLOSED, '127.0.0.2:7000');
      emitter.emit('error', clusterAllFailed(CLOSED));
    }
    await new Promise((resolve) => setImmediate(resolve));
    emitter.emit('error', clusterAllFailed(CLOSED));
    expect(probes).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      problem: 'tls-hostname',
      node: '127.0.0.2:7000',
      diagnosedBy: 'direct-connection',
      error: { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    });
  });

  it('logs the original error when the diagnosis connects or fails', async () => {
    const connects = setup({ diagnose: async () => undefined });
    connects.emitter.emit('error', clusterAllFailed(CLOSED));
    await new Promise((resolve) => setImmediate(resolve));
    expect(connects.lines).toMatchObject([{ problem: 'other', error: { message: 'Connection is closed.' } }]);

    const throws = setup({ diagnose: async () => Promise.reject(new Error('probe broke')) });
    throws.emitter.emit('error', CLOSED);
    await new Promise((resolve) => setImmediate(resolve));
    expect(throws.lines).toMatchObject([{ problem: 'other', error: { message: 'Connection is closed.' } }]);
  });

  it('never writes a registered secret, even inside an error message', () => {
    const lines: string[] = [];
    const emitter = new EventEmitter();
    const secret = 'hunter2-but-longer-secret';
    const logger = createLogger({ write: (line) => lines.push(line), secrets: [secret] });
    attachErrorLogging(emitter, logger, { client: 'worker' });
    emitter.emit('error', new Error(`AUTH failed for ${secret}`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(secret);
  });
});
