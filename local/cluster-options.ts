import { z } from 'zod';
import { LocalClusterOptionsError } from './errors.ts';

/**
 * Options of `LocalRedisCluster.start`, validated once (zod). Every problem is reported at once
 * (LocalClusterOptionsError.problems). Defaults favour fast, honest tests: 3 primaries with 1 replica
 * each, `cluster-node-timeout` 1000 ms (failovers in seconds), no persistence, no keyspace events.
 */

/** Name of the internal user the class itself and replication (`masteruser`) authenticate as. */
export const ADMIN_USERNAME = 'kl-local-admin';

// A token of a redis.conf line must not need quoting inside an ACL rule: no whitespace, no quotes.
const TOKEN = /^[^\s"'\\]+$/;

const userSchema = z.object({
  name: z
    .string()
    .regex(TOKEN, 'must be a non-empty word without whitespace or quotes')
    .refine((name) => name !== 'default' && name !== ADMIN_USERNAME, {
      message: `'default' and '${ADMIN_USERNAME}' are reserved (use disableDefaultUser for the default user)`,
    }),
  password: z.string().regex(TOKEN, 'must be a non-empty word without whitespace or quotes'),
  /**
   * ACL rules after `on >password`, e.g. `~{kl:*} &__keyevent@0__:expired +@read +@write -@dangerous`.
   * The user starts from `reset` (no keys, no channels, no commands), so grant what it needs.
   */
  access: z.string().refine((access) => !/[\r\n]/.test(access), { message: 'must be one line' }),
});

const optionsSchema = z
  .object({
    primaries: z.number().int().min(1).max(16).default(3),
    replicasPerPrimary: z.number().int().min(0).max(4).default(1),
    nodeTimeoutMs: z.number().int().min(100).max(60_000).default(1000),
    /**
     * `off`: no RDB, no AOF (a restarted node comes back empty unless it syncs from a primary).
     * `aof`: appendonly yes, fsync every second; acknowledged writes survive SIGKILL of the process.
     * `rdb`: snapshots (every 10 s after a change, and on a graceful stop).
     */
    persistence: z.enum(['off', 'aof', 'rdb']).default('off'),
    /**
     * Value of `notify-keyspace-events` at start (`Egx` for precise expiry, `Ex` for native expiry
     * only); unset leaves Redis' default (off).
     */
    notifyKeyspaceEvents: z.string().optional(),
    /** Appended to every `redis-server` command line, e.g. `['--hz', '50']`. */
    extraArgs: z.array(z.string()).default([]),
    /** TLS only: `port 0`, `tls-port`, TLS on the cluster bus and for replication. */
    tls: z.boolean().default(false),
    users: z.array(userSchema).default([]),
    /** `user default off`: every client must authenticate as one of `users` (or the admin). */
    disableDefaultUser: z.boolean().default(false),
    /** Bound for `start()` to reach a healthy cluster. */
    startTimeoutMs: z.number().int().min(1000).default(60_000),
    /** Path of `redis-server`; default: found on PATH (installed with apt-get when root, see redis-binary.ts). */
    redisServerPath: z.string().min(1).optional(),
  })
  .superRefine((options, context) => {
    const names = options.users.map((u) => u.name);
    const duplicates = names.filter((name, index) => names.indexOf(name) !== index);
    if (duplicates.length > 0) {
      context.addIssue({
        code: 'custom',
        path: ['users'],
        message: `duplicate user names: ${duplicates.join(', ')}`,
      });
    }
    const nodeCount = options.primaries * (1 + options.replicasPerPrimary);
    if (nodeCount > 32) {
      context.addIssue({
        code: 'custom',
        path: ['primaries'],
        message: `${nodeCount} nodes is more than 32`,
      });
    }
  });

export type LocalClusterOptions = z.input<typeof optionsSchema>;
export type ResolvedClusterOptions = z.output<typeof optionsSchema>;
export type LocalClusterUser = z.output<typeof userSchema>;

export function parseClusterOptions(options: LocalClusterOptions = {}): ResolvedClusterOptions {
  const result = optionsSchema.safeParse(options);
  if (result.success) return result.data;
  throw new LocalClusterOptionsError(
    result.error.issues.map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'options'}: ${issue.message}`,
    ),
  );
}
