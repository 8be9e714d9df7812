/**
 * Issue 8 in the CDK app: the two authentication modes (`-c auth=token`, the default, and
 * `-c auth=rbac`), no password in clear anywhere in either template, least-privilege RBAC users with
 * the access strings of core/acl.ts, a non-root container on a read-only root file system, and the
 * environment each deployable receives being one its own configuration parser accepts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, Token } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContextError, readContext, stackPropsFromContext } from '../../cdk/app.ts';
import {
  DISABLED_DEFAULT_ACCESS,
  NOTIFY_CHECK_USER_NAME,
  WORKER_USER_NAME,
} from '../../cdk/constructs/cache-users.ts';
import { WORKER_CONTAINER_USER } from '../../cdk/constructs/worker-service.ts';
import { notifyCheckAccessString, workerAccessString } from '../../core/acl.ts';
import { parseWorkerConfig } from '../../core/config.ts';
import { parseNotifyCheckEnv } from '../../lambdas/notify-check/notify-check-env.ts';
import { type CfnProps, REPO_ROOT, resourcesOfType, type Synthesized, synthesize } from './synth.ts';

const LEADER = 'orders';
let token: Synthesized;
let rbac: Synthesized;

beforeAll(() => {
  token = synthesize({ leaderName: LEADER });
  rbac = synthesize({ leaderName: LEADER, auth: 'rbac' });
});

const ref = (logicalId: string) => ({ Ref: logicalId });
const dynamicReference = (secretId: string) => ({
  'Fn::Join': ['', ['{{resolve:secretsmanager:', ref(secretId), ':SecretString:::}}']],
});
const nagFindings = (s: Synthesized): string[] =>
  new AwsSolutionsChecks()
    .validateScope(s.app)
    .violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
const only = (s: Synthesized, type: string): [string, CfnProps] => {
  const found = resourcesOfType(s.json, type);
  expect(found, type).toHaveLength(1);
  return found[0] as [string, CfnProps];
};
const usersByName = (s: Synthesized): Record<string, CfnProps> =>
  Object.fromEntries(
    resourcesOfType(s.json, 'AWS::ElastiCache::User').map(([id, p]) => [p.UserName, { id, ...p }]),
  );
const containerOf = (s: Synthesized) => only(s, 'AWS::ECS::TaskDefinition')[1].ContainerDefinitions[0];
const envOf = (entries: { Name: string; Value: unknown }[]) =>
  Object.fromEntries(entries.map((e) => [e.Name, e.Value]));
const lambdaEnvOf = (s: Synthesized): Record<string, unknown> => {
  const [, fn] = resourcesOfType(s.json, 'AWS::Lambda::Function').find(([, p]) =>
    Boolean(p.Environment?.Variables?.NOTIFY_MODE),
  ) as [string, CfnProps];
  return fn.Environment.Variables;
};

/** Every place a template could carry a literal secret: these property names with a plain string. */
function literalSecrets(json: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown, where: string): void => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        visit(child, `${where}[${i}]`);
      });
    } else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        const secretKey = /^(AuthToken|Passwords?|MasterUserPassword|SecretString|REDIS_PASSWORD)$/.test(key);
        if (secretKey && typeof value === 'string') found.push(`${where}.${key}`);
        if (secretKey && Array.isArray(value) && value.some((v) => typeof v === 'string'))
          found.push(`${where}.${key}[]`);
        visit(value, `${where}.${key}`);
      }
    }
  };
  visit(json, '$');
  return found;
}

describe('both modes', () => {
  it('hold no password in clear: secrets only as dynamic references or ECS secrets', () => {
    let usersChecked = 0;
    let secretsChecked = 0;
    for (const s of [token, rbac]) {
      expect(literalSecrets(s.json)).toEqual([]);
      const text = JSON.stringify(s.json);
      expect(text).not.toMatch(/"Name":"REDIS_PASSWORD","Value"/);
      // ACL syntax for a password inside an access string (`>secret`, `#hash`) never appears.
      for (const [, user] of resourcesOfType(s.json, 'AWS::ElastiCache::User')) {
        expect(user.AccessString).not.toMatch(/(^| )[>#<]/);
        expect(user.NoPasswordRequired).toBeUndefined();
        usersChecked++;
      }
      for (const [, secret] of resourcesOfType(s.json, 'AWS::SecretsManager::Secret')) {
        expect(secret.SecretString).toBeUndefined();
        expect(secret.GenerateSecretString).toMatchObject({ ExcludePunctuation: true, IncludeSpace: false });
        expect(secret.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(32);
        secretsChecked++;
      }
    }
    // The loops above ran: the RBAC stack has its users, and both stacks have generated secrets.
    expect(usersChecked).toBeGreaterThan(0);
    expect(secretsChecked).toBeGreaterThanOrEqual(2);
  });

  it('have no unacknowledged cdk-nag findings', () => {
    expect(nagFindings(token)).toEqual([]);
    expect(nagFindings(rbac)).toEqual([]);
  });

  it('run the worker as a non-root user on a read-only root file system, TLS on', () => {
    for (const s of [token, rbac]) {
      const container = containerOf(s);
      expect(container.User).toBe(WORKER_CONTAINER_USER);
      expect(container.ReadonlyRootFilesystem).toBe(true);
      expect(container.Privileged).toBeUndefined();
      expect(envOf(container.Environment).REDIS_TLS).toBe('true');
      expect(lambdaEnvOf(s).REDIS_TLS).toBe('true');
      expect(only(s, 'AWS::ElastiCache::ReplicationGroup')[1].TransitEncryptionEnabled).toBe(true);
    }
  });

  it('build an image whose final stage runs as that same unprivileged user', () => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'worker/Dockerfile'), 'utf8');
    const finalStage = dockerfile.split(/^FROM /m).at(-1) ?? '';
    const users = [...finalStage.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toBe(WORKER_CONTAINER_USER);
    expect(users).not.toContain('root');
    expect(users).not.toContain('0');
    // The user is set before the command that starts the worker.
    expect(finalStage.indexOf('USER ')).toBeLessThan(finalStage.indexOf('CMD '));
  });
});

describe('auth=token (default)', () => {
  it('keeps the AUTH token path: one secret as AuthToken, no RBAC users, no user name', () => {
    const [secretId] = only(token, 'AWS::SecretsManager::Secret');
    expect(only(token, 'AWS::ElastiCache::ReplicationGroup')[1].AuthToken).toEqual(
      dynamicReference(secretId),
    );
    expect(only(token, 'AWS::ElastiCache::ReplicationGroup')[1].UserGroupIds).toBeUndefined();
    token.template.resourceCountIs('AWS::ElastiCache::User', 0);
    token.template.resourceCountIs('AWS::ElastiCache::UserGroup', 0);
    expect(envOf(containerOf(token).Environment).REDIS_USERNAME).toBeUndefined();
    expect(containerOf(token).Secrets).toEqual([{ Name: 'REDIS_PASSWORD', ValueFrom: ref(secretId) }]);
    expect(lambdaEnvOf(token).REDIS_PASSWORD_SECRET_ARN).toEqual(ref(secretId));
    expect(lambdaEnvOf(token).REDIS_USERNAME).toBeUndefined();
    token.template.hasOutput('AuthTokenSecretArn', { Value: ref(secretId) });
  });
});

describe('auth=rbac', () => {
  it('creates a user per role with the access strings of core/acl.ts, and a disabled default user', () => {
    const users = usersByName(rbac);
    expect(Object.keys(users).sort()).toEqual(['default', NOTIFY_CHECK_USER_NAME, WORKER_USER_NAME].sort());
    expect(users[WORKER_USER_NAME].AccessString).toBe(workerAccessString(LEADER));
    // Precise expiry (the default): user keys read-only (the worker's default KEY_PATTERN `*`), SCAN,
    // and the expire channel for the worker and the check.
    expect(users[WORKER_USER_NAME].AccessString.split(' ')).toEqual(
      expect.arrayContaining([
        '%R~*',
        '+pexpiretime',
        '+scan',
        '+time',
        '+command|info',
        '&__keyevent@0__:expire',
      ]),
    );
    expect(users[NOTIFY_CHECK_USER_NAME].AccessString.split(' ')).toContain('&__keyevent@0__:expire');
    // CONFIG is restricted on ElastiCache (and named in an access string, refused): no CONFIG rights.
    expect(users[NOTIFY_CHECK_USER_NAME].AccessString).toBe(
      notifyCheckAccessString(LEADER, { configRights: false }),
    );
    expect(users[NOTIFY_CHECK_USER_NAME].AccessString).not.toMatch(/config/);
    expect(users.default.AccessString).toBe(DISABLED_DEFAULT_ACCESS);
    for (const user of Object.values(users)) {
      expect(user.Engine).toBe('redis');
      expect(user.UserId).toMatch(/^keyspaceleader-[a-z-]+$/);
      expect(user.AccessString.split(' ')[0]).toMatch(/^(on|off)$/);
      expect(user.AccessString).not.toMatch(/\breset\b/);
    }
  });

  it('gives every user its own generated password, passed as a dynamic reference', () => {
    const users = usersByName(rbac);
    const secretIds = resourcesOfType(rbac.json, 'AWS::SecretsManager::Secret').map(([id]) => id);
    expect(secretIds).toHaveLength(3);
    const used = Object.values(users).map((user) => {
      expect(user.Passwords).toHaveLength(1);
      const [password] = user.Passwords;
      const secretId = password['Fn::Join'][1][1].Ref as string;
      expect(password).toEqual(dynamicReference(secretId));
      return secretId;
    });
    expect(new Set(used)).toEqual(new Set(secretIds));
  });

  it('attaches the user group, which holds the three users, instead of an AUTH token', () => {
    const users = usersByName(rbac);
    const [groupId, group] = only(rbac, 'AWS::ElastiCache::UserGroup');
    expect(group.Engine).toBe('redis');
    expect(group.UserIds.map((u: { Ref: string }) => u.Ref).sort()).toEqual(
      Object.values(users)
        .map((u) => u.id)
        .sort(),
    );
    const [, rg] = only(rbac, 'AWS::ElastiCache::ReplicationGroup');
    expect(rg.UserGroupIds).toEqual([ref(groupId)]);
    expect(rg.AuthToken).toBeUndefined();
    expect(rbac.template.findOutputs('AuthTokenSecretArn')).toEqual({});
    rbac.template.hasOutput('UserGroupId', { Value: ref(groupId) });
  });

  it('gives the worker its user name and only its own password', () => {
    const users = usersByName(rbac);
    const workerSecret = users[WORKER_USER_NAME].Passwords[0]['Fn::Join'][1][1];
    expect(envOf(containerOf(rbac).Environment).REDIS_USERNAME).toBe(WORKER_USER_NAME);
    expect(containerOf(rbac).Secrets).toEqual([{ Name: 'REDIS_PASSWORD', ValueFrom: workerSecret }]);
    rbac.template.hasOutput('WorkerPasswordSecretArn', { Value: workerSecret });
  });

  it('gives the Lambda its user name and lets it read only its own password', () => {
    const users = usersByName(rbac);
    const checkSecret = users[NOTIFY_CHECK_USER_NAME].Passwords[0]['Fn::Join'][1][1];
    const env = lambdaEnvOf(rbac);
    expect(env.REDIS_USERNAME).toBe(NOTIFY_CHECK_USER_NAME);
    expect(env.REDIS_PASSWORD_SECRET_ARN).toEqual(checkSecret);
    const secretReads = resourcesOfType(rbac.json, 'AWS::IAM::Policy')
      .flatMap(([id, p]) => p.PolicyDocument.Statement.map((s: CfnProps) => ({ id, ...s })))
      .filter((s) => [s.Action].flat().some((a: string) => a.startsWith('secretsmanager:')));
    const readers = secretReads.map((s) => ({ policy: s.id as string, resources: [s.Resource].flat() }));
    // The Lambda reads the check's secret; the worker's task execution role reads the worker's; nobody the default's.
    const checkReaders = readers.filter((r) =>
      r.resources.some((x) => JSON.stringify(x) === JSON.stringify(checkSecret)),
    );
    expect(checkReaders.map((r) => r.policy)).toEqual([
      expect.stringMatching(/^NotifyCheckRoleDefaultPolicy/),
    ]);
    const defaultSecret = users.default.Passwords[0]['Fn::Join'][1][1];
    expect(JSON.stringify(readers)).not.toContain(JSON.stringify(defaultSecret));
  });
});

describe('the environment the stack gives each deployable is one it accepts', () => {
  /** Tokens (endpoint address, secret ARNs) become sample values; REDIS_PASSWORD comes from the ECS secret. */
  const concrete = (env: Record<string, unknown>): Record<string, string> =>
    Object.fromEntries(
      Object.entries(env).map(([k, v]) => {
        if (typeof v === 'string' && !Token.isUnresolved(v)) return [k, v];
        if (k === 'REDIS_NODES') return [k, 'clustercfg.example.cache.amazonaws.com:6380'];
        if (k.endsWith('_ARN')) return [k, 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kl-abc123'];
        return [k, 'sample-value'];
      }),
    );

  it('worker: the task environment plus REDIS_PASSWORD parses (token and rbac)', () => {
    for (const s of [token, rbac]) {
      const env = {
        ...concrete(envOf(containerOf(s).Environment)),
        REDIS_PASSWORD: 'from-the-ecs-secret-0123456789',
      };
      expect(() => parseWorkerConfig(env)).not.toThrow();
    }
  });

  it('Lambda: the function environment parses with the AUTH token', () => {
    expect(() => parseNotifyCheckEnv(concrete(lambdaEnvOf(token)))).not.toThrow();
  });

  it('Lambda: the function environment parses with RBAC (REDIS_USERNAME + REDIS_PASSWORD_SECRET_ARN)', () => {
    // Fails today: core/config.ts refuses REDIS_USERNAME without REDIS_PASSWORD, and
    // lambdas/notify-check/notify-check-env.ts does not count REDIS_PASSWORD_SECRET_ARN as the password.
    expect(() => parseNotifyCheckEnv(concrete(lambdaEnvOf(rbac)))).not.toThrow();
  });
});

describe('context', () => {
  const problemsOf = (context: Record<string, unknown>): string[] => {
    try {
      stackPropsFromContext(readContext(new App({ context })), {});
    } catch (error) {
      if (error instanceof ContextError) return [...error.problems];
      throw error;
    }
    return [];
  };

  it('accepts token and rbac, refuses anything else', () => {
    expect(problemsOf({ auth: 'token' })).toEqual([]);
    expect(problemsOf({ auth: 'rbac' })).toEqual([]);
    expect(problemsOf({ auth: 'iam' })).toEqual([expect.stringMatching(/^auth:/)]);
  });

  it('refuses rbac with an engine older than 7', () => {
    expect(problemsOf({ auth: 'rbac', cacheEngine: 'redis', cacheEngineVersion: '6.2' })).toEqual([
      expect.stringMatching(/^auth: .*version 7/),
    ]);
    expect(problemsOf({ auth: 'token', cacheEngine: 'redis', cacheEngineVersion: '6.2' })).toEqual([]);
  });
});
