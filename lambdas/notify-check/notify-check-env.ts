import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { type Env, type ParseOptions, parseReportConfig, type ReportConfig } from '../../core/config.ts';
import { ConfigError, type ConfigIssue } from '../../core/errors.ts';
import { sendBounded } from './aws-call.ts';
import { SecretReadError } from './errors.ts';

/**
 * The Lambda's configuration: core's ReportConfig plus `REDIS_PASSWORD_SECRET_ARN` (a variable of
 * the Lambda only: Lambda has no ECS-style secret injection, so the handler reads the AUTH token from
 * Secrets Manager itself). Both problems sets are reported together in one ConfigError.
 */

export const PASSWORD_SECRET_VARIABLE = 'REDIS_PASSWORD_SECRET_ARN';

export interface NotifyCheckEnv {
  readonly config: ReportConfig;
  /** Secret ARN (or name) holding the Redis password; undefined when REDIS_PASSWORD_SECRET_ARN is unset. */
  readonly passwordSecretId: string | undefined;
}

const SECRET_ID =
  /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512})$/;

export function parseNotifyCheckEnv(env: Env, options: ParseOptions = {}): NotifyCheckEnv {
  const issues: ConfigIssue[] = [];
  const raw = env[PASSWORD_SECRET_VARIABLE];
  const passwordSecretId = raw === undefined || raw.trim() === '' ? undefined : raw.trim();
  let config: ReportConfig | undefined;
  try {
    config = parseReportConfig(env, { ...options, passwordFromSecret: passwordSecretId !== undefined });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...error.issues);
  }
  if (passwordSecretId !== undefined) {
    if (!SECRET_ID.test(passwordSecretId)) {
      issues.push({
        variable: PASSWORD_SECRET_VARIABLE,
        message: `${PASSWORD_SECRET_VARIABLE} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>) or name`,
      });
    }
    if (env.REDIS_PASSWORD !== undefined && env.REDIS_PASSWORD !== '') {
      issues.push({
        variable: PASSWORD_SECRET_VARIABLE,
        message: `${PASSWORD_SECRET_VARIABLE} and REDIS_PASSWORD are both set: set only one (the secret is read at cold start)`,
      });
    }
  }
  if (issues.length > 0 || config === undefined) throw new ConfigError(issues);
  return { config, passwordSecretId };
}

/**
 * The password in a secret's string: the whole string, or, when it is a JSON object (the shape CDK's
 * `generateSecretString` with a template produces), its `password` (else `authToken`, else `token`).
 */
export function passwordFromSecretString(secretId: string, text: string): string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return text;
  }
  if (typeof data === 'string') return data;
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const fields = data as Record<string, unknown>;
    for (const name of ['password', 'authToken', 'token']) {
      const value = fields[name];
      if (typeof value === 'string' && value !== '') return value;
    }
    throw new SecretReadError(
      `secret ${secretId} is a JSON object without a "password", "authToken" or "token" string field`,
    );
  }
  return text;
}

/** Reads the Redis password from Secrets Manager (bounded). The value is never in an error message. */
export async function readRedisPassword(
  client: SecretsManagerClient,
  secretId: string,
  timeoutMs: number,
): Promise<string> {
  let output: GetSecretValueCommandOutput;
  try {
    output = await sendBounded(
      (o) => client.send(new GetSecretValueCommand({ SecretId: secretId }), o),
      timeoutMs,
      `GetSecretValue ${secretId}`,
    );
  } catch (cause) {
    throw new SecretReadError(`could not read secret ${secretId}`, { cause });
  }
  if (typeof output.SecretString !== 'string' || output.SecretString === '') {
    throw new SecretReadError(`secret ${secretId} has no string value (binary secrets are not supported)`);
  }
  return passwordFromSecretString(secretId, output.SecretString);
}

export function withPassword(config: ReportConfig, password: string): ReportConfig {
  return { ...config, redis: { ...config.redis, password } };
}
