import { describe, expect, it } from 'vitest';
import { ADMIN_USERNAME, parseClusterOptions } from '../../../local/cluster-options.ts';
import { buildNodeConfig, quoteConfigValue, type TlsFiles } from '../../../local/redis-config.ts';

const base = { port: 21000, busPort: 22000, nodeDir: '/tmp/kl-x/node-21000', adminPassword: 'f00d' };

function lines(options: Parameters<typeof parseClusterOptions>[0], tlsFiles?: TlsFiles): string[] {
  return buildNodeConfig({ ...base, tlsFiles, options: parseClusterOptions(options) })
    .trim()
    .split('\n');
}

describe('buildNodeConfig', () => {
  it('sets the cluster settings the tests rely on', () => {
    const config = lines({});
    expect(config).toEqual(
      expect.arrayContaining([
        'bind 127.0.0.1',
        'port 21000',
        'cluster-enabled yes',
        'cluster-port 22000',
        'cluster-node-timeout 1000',
        'cluster-require-full-coverage no',
        'cluster-allow-replica-migration no',
        'repl-diskless-sync-delay 0',
        'set-proc-title no',
        'cluster-config-file "/tmp/kl-x/node-21000/nodes.conf"',
        `masteruser ${ADMIN_USERNAME}`,
        'masterauth "f00d"',
        `user ${ADMIN_USERNAME} on >f00d ~* &* +@all`,
        'shutdown-on-sigterm "nosave now"',
      ]),
    );
  });

  it('leaves notify-keyspace-events unset by default and sets it when asked', () => {
    expect(lines({}).some((l) => l.startsWith('notify-keyspace-events'))).toBe(false);
    expect(lines({ notifyKeyspaceEvents: 'Ex' })).toContain('notify-keyspace-events "Ex"');
    expect(lines({ nodeTimeoutMs: 2000 })).toContain('cluster-node-timeout 2000');
  });

  it('maps persistence to save/appendonly and to what a graceful stop saves', () => {
    expect(lines({})).toEqual(expect.arrayContaining(['save ""', 'appendonly no']));
    expect(lines({ persistence: 'aof' })).toEqual(expect.arrayContaining(['save ""', 'appendonly yes']));
    expect(lines({ persistence: 'rdb' })).toEqual(
      expect.arrayContaining(['save 10 1', 'appendonly no', 'shutdown-on-sigterm "save now"']),
    );
  });

  it('writes ACL users from reset, and turns the default user off on request', () => {
    const config = lines({
      users: [{ name: 'worker', password: 'pw1', access: '~{kl:* &__keyevent@0__:expired +@read' }],
      disableDefaultUser: true,
    });
    expect(config).toContain('user worker reset on >pw1 ~{kl:* &__keyevent@0__:expired +@read');
    expect(config).toContain('user default off');
    expect(lines({})).not.toContain('user default off');
  });

  it('with tls: no plain port, TLS on the client port, the bus and replication', () => {
    const tlsFiles = { caFile: '/t/ca.crt', certFile: '/t/server.crt', keyFile: '/t/server.key' };
    const config = lines({ tls: true }, tlsFiles);
    expect(config).toEqual(
      expect.arrayContaining([
        'port 0',
        'tls-port 21000',
        'tls-cluster yes',
        'tls-replication yes',
        'tls-ca-cert-file "/t/ca.crt"',
        'tls-auth-clients no',
      ]),
    );
    expect(config).not.toContain('port 21000');
  });

  it('quotes values for the redis.conf parser', () => {
    expect(quoteConfigValue('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
    expect(quoteConfigValue('')).toBe('""');
  });
});
