import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENV_DEFAULTS, parseWorkerConfig } from '../../../core/config.ts';

/**
 * The README's "Configuration" table states the defaults core/config.ts applies, which come from the
 * components' DEFAULTS (core/defaults.ts).
 */

const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');

/** `VARIABLE` -> the default cell of its row, backticks removed. */
function documentedDefaults(): Map<string, string> {
  const start = readme.indexOf('\n## Configuration\n');
  const end = readme.indexOf('\n## ', start + 1);
  const rows = new Map<string, string>();
  for (const line of readme.slice(start, end).split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const variable = /^`([A-Z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (variable !== undefined) rows.set(variable, (cells[3] ?? '').replace(/`/g, ''));
  }
  return rows;
}

describe('configuration defaults', () => {
  it('the README table states every default core/config.ts applies', () => {
    const documented = documentedDefaults();
    for (const [variable, value] of Object.entries(ENV_DEFAULTS)) {
      expect({ variable, documented: documented.get(variable) }).toEqual({
        variable,
        documented: String(value),
      });
    }
  });

  it('the parsed configuration takes the same defaults', () => {
    const config = parseWorkerConfig({ REDIS_NODES: '127.0.0.1:7000' });
    expect({
      LEADER_NAME: config.leaderName,
      LOG_LEVEL: config.logLevel,
      LEASE_TTL_MS: config.leaseTtlMs,
      LEASE_RENEW_INTERVAL_MS: config.leaseRenewIntervalMs,
      LEASE_RENEW_DEADLINE_MS: config.leaseRenewDeadlineMs,
      LEASE_RETRY_MS: config.leaseRetryMs,
      HANDLER_CONCURRENCY: config.handlerConcurrency,
      HANDLER_QUEUE_CAPACITY: config.handlerQueueCapacity,
      HANDLER_TIMEOUT_MS: config.handlerTimeoutMs,
      KEY_PATTERN: config.keyPattern,
      HEALTH_PORT: config.healthPort,
      REPLAY_WINDOW_MS: config.replayWindowMs,
      REPLAY_MAX_EVENTS: config.replayMaxEvents,
      PRECISE_EXPIRY: config.preciseExpiry,
      EXPIRY_TRACK_MAX_KEYS: config.expiryTrackMaxKeys,
      EXPIRY_SCAN_KEYS_PER_S: config.expiryScanKeysPerS,
      CAPTURE_VALUES: config.captureValues,
      EXPIRY_READ_AHEAD_MS: config.expiryReadAheadMs,
      VALUE_MAX_BYTES: config.valueMaxBytes,
      VALUE_BUDGET_BYTES: config.valueBudgetBytes,
    }).toEqual({
      LEADER_NAME: ENV_DEFAULTS.LEADER_NAME,
      LOG_LEVEL: ENV_DEFAULTS.LOG_LEVEL,
      LEASE_TTL_MS: ENV_DEFAULTS.LEASE_TTL_MS,
      LEASE_RENEW_INTERVAL_MS: ENV_DEFAULTS.LEASE_RENEW_INTERVAL_MS,
      LEASE_RENEW_DEADLINE_MS: ENV_DEFAULTS.LEASE_RENEW_DEADLINE_MS,
      LEASE_RETRY_MS: ENV_DEFAULTS.LEASE_RETRY_MS,
      HANDLER_CONCURRENCY: ENV_DEFAULTS.HANDLER_CONCURRENCY,
      HANDLER_QUEUE_CAPACITY: ENV_DEFAULTS.HANDLER_QUEUE_CAPACITY,
      HANDLER_TIMEOUT_MS: ENV_DEFAULTS.HANDLER_TIMEOUT_MS,
      KEY_PATTERN: ENV_DEFAULTS.KEY_PATTERN,
      HEALTH_PORT: ENV_DEFAULTS.HEALTH_PORT,
      REPLAY_WINDOW_MS: ENV_DEFAULTS.REPLAY_WINDOW_MS,
      REPLAY_MAX_EVENTS: ENV_DEFAULTS.REPLAY_MAX_EVENTS,
      PRECISE_EXPIRY: ENV_DEFAULTS.PRECISE_EXPIRY,
      EXPIRY_TRACK_MAX_KEYS: ENV_DEFAULTS.EXPIRY_TRACK_MAX_KEYS,
      EXPIRY_SCAN_KEYS_PER_S: ENV_DEFAULTS.EXPIRY_SCAN_KEYS_PER_S,
      CAPTURE_VALUES: ENV_DEFAULTS.CAPTURE_VALUES,
      EXPIRY_READ_AHEAD_MS: ENV_DEFAULTS.EXPIRY_READ_AHEAD_MS,
      VALUE_MAX_BYTES: ENV_DEFAULTS.VALUE_MAX_BYTES,
      VALUE_BUDGET_BYTES: ENV_DEFAULTS.VALUE_BUDGET_BYTES,
    });
    expect(config.handler).toEqual({ kind: ENV_DEFAULTS.HANDLER });
  });
});
