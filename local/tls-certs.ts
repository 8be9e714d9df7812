import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TlsSetupError } from './errors.ts';
import type { TlsFiles } from './redis-config.ts';

const execFileAsync = promisify(execFile);

/**
 * A throw-away CA and one server certificate for 127.0.0.1 / localhost, made with the `openssl` CLI
 * in `dir` (inside the cluster's temporary folder, removed with it). P-256 keys: generated in
 * milliseconds, accepted by Redis and Node. The server certificate is valid for both serverAuth and
 * clientAuth because nodes present it to each other on the cluster bus and for replication.
 */
export async function generateTlsCertificates(dir: string, opensslPath = 'openssl'): Promise<TlsFiles> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  const csrFile = join(dir, 'server.csr');
  const extFile = join(dir, 'server.ext');
  await writeFile(
    extFile,
    [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth, clientAuth',
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
      '',
    ].join('\n'),
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const run = async (args: string[]): Promise<void> => {
    try {
      await execFileAsync(opensslPath, args, { cwd: dir, timeout: 20_000 });
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new TlsSetupError(
        missing
          ? `'${opensslPath}' not found: tls needs openssl (Debian/Ubuntu: sudo apt-get install -y openssl; macOS: brew install openssl)`
          : `openssl ${args[0]} failed: ${(error as { stderr?: string }).stderr?.trim() ?? String(error)}`,
        { cause: error },
      );
    }
  };
  await run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '7',
    '-subj',
    '/CN=keyspace-leader local CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run(['req', ...ec, '-keyout', keyFile, '-out', csrFile, '-subj', '/CN=localhost']);
  await run([
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    caFile,
    '-CAkey',
    caKey,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '7',
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return { caFile, certFile, keyFile };
}
