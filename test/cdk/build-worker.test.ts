/**
 * `npm run build:worker` (worker/bundle.ts, esbuild) produces the two files the image runs, with
 * every production dependency inlined (the runtime image has no node_modules).
 *
 * Runs only when worker/main.ts exists (it was written in parallel with the CDK work); without it
 * vitest reports these tests as skipped, not passed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { isBuiltin } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './synth.ts';

const hasEntry = existsSync(path.join(REPO_ROOT, 'worker', 'main.ts'));
const distDir = path.join(REPO_ROOT, 'dist', 'worker');

/** Module specifiers a bundle still imports at run time (static, dynamic with a literal, require). */
function runtimeSpecifiers(code: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.add(match[1] as string);
  return [...found];
}

/** Runs the bundled health check against `port`; resolves with its exit code. */
function runBundledHealthcheck(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(distDir, 'healthcheck.mjs')], {
      env: { ...process.env, HEALTH_PORT: String(port) },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

describe.runIf(hasEntry)('npm run build:worker', () => {
  beforeAll(() => {
    const result = spawnSync('npm', ['run', 'build:worker'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (result.status !== 0)
      throw new Error(`build:worker failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  });

  it('writes dist/worker/main.mjs and dist/worker/healthcheck.mjs as ESM with a real require', () => {
    for (const file of ['main.mjs', 'healthcheck.mjs']) {
      const code = readFileSync(path.join(distDir, file), 'utf8');
      expect(code.startsWith("import { createRequire as __klCreateRequire } from 'node:module'"), file).toBe(
        true,
      );
    }
  });

  it('inlines every dependency: only Node built-ins are imported at run time', () => {
    for (const file of ['main.mjs', 'healthcheck.mjs']) {
      const external = runtimeSpecifiers(readFileSync(path.join(distDir, file), 'utf8')).filter(
        (s) => !isBuiltin(s),
      );
      expect(external, file).toEqual([]);
    }
  });

  it('produces a health check that exits 0 on 200 and 1 on 503', async () => {
    let status = 200;
    const server = createServer((_req, res) => {
      res.statusCode = status;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      expect(await runBundledHealthcheck(port)).toBe(0);
      status = 503;
      expect(await runBundledHealthcheck(port)).toBe(1);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
