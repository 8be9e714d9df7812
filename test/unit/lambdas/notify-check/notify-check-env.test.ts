import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../core/errors.ts';
import { SecretReadError } from '../../../../lambdas/notify-check/errors.ts';
import {
  parseNotifyCheckEnv,
  passwordFromSecretString,
  readRedisPassword,
  withPassword,
} from '../../../../lambdas/notify-check/notify-check-env.ts';

const secrets = mockClient(SecretsManagerClient);
afterEach(() => secrets.reset());

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kl-auth-AbCdEf';

describe('parseNotifyCheckEnv', () => {
  it('adds REDIS_PASSWORD_SECRET_ARN to the report configuration', () => {
    const parsed = parseNotifyCheckEnv({
      REDIS_NODES: 'cfg.example:6379',
      REDIS_TLS: 'true',
      REDIS_PASSWORD_SECRET_ARN: ARN,
    });
    expect(parsed.passwordSecretId).toBe(ARN);
    expect(parsed.config.redis.password).toBeUndefined();
    expect(parsed.config.notifyMode).toBe('auto');
    expect(parsed.config.canaryTimeoutMs).toBe(3000);
  });

  it('accepts a secret name as well as an ARN, and treats an empty value as unset', () => {
    expect(
      parseNotifyCheckEnv({ REDIS_NODES: 'a:1', REDIS_PASSWORD_SECRET_ARN: 'prod/kl/auth' }).passwordSecretId,
    ).toBe('prod/kl/auth');
    expect(
      parseNotifyCheckEnv({ REDIS_NODES: 'a:1', REDIS_PASSWORD_SECRET_ARN: '' }).passwordSecretId,
    ).toBeUndefined();
  });

  it('lists its own problems together with core configuration problems', () => {
    const error = (() => {
      try {
        parseNotifyCheckEnv({
          NOTIFY_MODE: 'parameter-group',
          CANARY_TIMEOUT_MS: 'soon',
          REDIS_PASSWORD: 'x-password',
          REDIS_PASSWORD_SECRET_ARN: ARN,
        });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).issues.map((i) => i.variable);
    expect(variables).toEqual(expect.arrayContaining(['CANARY_TIMEOUT_MS', 'REDIS_PASSWORD_SECRET_ARN']));
    expect((error as ConfigError).issues.some((i) => /both set/.test(i.message))).toBe(true);
  });
});

describe('passwordFromSecretString', () => {
  it.each([
    ['plain-token-value', 'plain-token-value'],
    [JSON.stringify({ password: 'p1' }), 'p1'],
    [JSON.stringify({ username: 'u', authToken: 'p2' }), 'p2'],
    [JSON.stringify({ token: 'p3' }), 'p3'],
    [JSON.stringify('quoted'), 'quoted'],
    ['12345', '12345'],
  ])('%s -> %s', (text, password) => {
    expect(passwordFromSecretString('s', text)).toBe(password);
  });

  it('refuses a JSON object without a password field, without echoing the secret', () => {
    const text = JSON.stringify({ user: 'kl', value: 'hidden-value' });
    expect(() => passwordFromSecretString('s', text)).toThrow(SecretReadError);
    try {
      passwordFromSecretString('s', text);
    } catch (error) {
      expect((error as Error).message).not.toContain('hidden-value');
    }
  });
});

describe('readRedisPassword', () => {
  it('reads the secret by its id', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: 'tok-123456' });
    await expect(
      readRedisPassword(new SecretsManagerClient({ region: 'eu-west-1' }), ARN, 500),
    ).resolves.toBe('tok-123456');
  });

  it('wraps a failure in SecretReadError', async () => {
    secrets.on(GetSecretValueCommand).rejects(new Error('AccessDeniedException'));
    const error = await readRedisPassword(new SecretsManagerClient({ region: 'eu-west-1' }), ARN, 500).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(SecretReadError);
    expect((error as SecretReadError).code).toBe('SECRET_READ_FAILED');
  });

  it('refuses a binary secret', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) });
    await expect(
      readRedisPassword(new SecretsManagerClient({ region: 'eu-west-1' }), ARN, 500),
    ).rejects.toThrow(/binary/);
  });
});

describe('withPassword', () => {
  it('returns a new configuration with the password, leaving the original untouched', () => {
    const { config } = parseNotifyCheckEnv({ REDIS_NODES: 'a:1' });
    const updated = withPassword(config, 'pw-pw-pw');
    expect(updated.redis.password).toBe('pw-pw-pw');
    expect(config.redis.password).toBeUndefined();
  });
});
