import { describe, expect, it } from 'vitest';
import { notifyCheckAccessString, workerAccessString } from '../../../../core/acl.ts';
import {
  generateRunUsers,
  nextRate,
  RATE_STEPS,
  scrubSecrets,
  securityLabel,
} from '../../../../local/runner/local-runner.ts';

describe('nextRate (the + and - keys)', () => {
  it('steps up and down through the rate ladder, staying at its ends', () => {
    expect(nextRate(50, 1)).toBe(100);
    expect(nextRate(50, -1)).toBe(20);
    expect(nextRate(0, -1)).toBe(0);
    expect(nextRate(50_000, 1)).toBe(50_000);
  });

  it('moves a rate that is not on the ladder to the nearest step in that direction', () => {
    expect(nextRate(70, 1)).toBe(100);
    expect(nextRate(70, -1)).toBe(50);
    expect(RATE_STEPS).toContain(50);
  });
});

describe('the ACL users of a --tls run', () => {
  it("gives the worker the worker's access string and the check its own with CONFIG rights", () => {
    const users = generateRunUsers('demo-1');
    expect(users.worker).toMatchObject({ name: 'worker', access: workerAccessString('demo-1') });
    expect(users.check).toMatchObject({
      name: 'check',
      access: notifyCheckAccessString('demo-1', { configRights: true }),
    });
    expect(users.check.access).toContain('+config|set');
    expect(users.worker.access).not.toContain('config');
  });

  it('generates new, distinct, long passwords every run', () => {
    const a = generateRunUsers('local');
    const b = generateRunUsers('local');
    const passwords = [a.worker.password, a.check.password, b.worker.password, b.check.password];
    expect(new Set(passwords).size).toBe(4);
    for (const p of passwords) expect(p).toMatch(/^[0-9a-f]{48}$/);
  });

  it('labels the views only when --tls is on', () => {
    expect(securityLabel(generateRunUsers('local'))).toBe('TLS, ACL users worker/check');
    expect(securityLabel(undefined)).toBeUndefined();
  });

  it('scrubs every secret from a line before it is printed', () => {
    expect(scrubSecrets('auth abc123 failed for abc123 and xyz', ['abc123', 'xyz', ''])).toBe(
      'auth [redacted] failed for [redacted] and [redacted]',
    );
    expect(scrubSecrets('nothing here', [])).toBe('nothing here');
  });
});
