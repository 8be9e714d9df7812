/**
 * `npx cdk synth` end to end, the way a fresh clone runs it: the pinned CLI, tsx, the local esbuild
 * for the Lambda, no AWS credentials, and a Docker binary that fails if anything calls it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './synth.ts';

describe('npx cdk synth (offline, no Docker, no credentials)', () => {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'kl-cdk-cli-'));
  let result: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('AWS_')));
    result = spawnSync('npx', ['cdk', 'synth', '-q', '--no-notices', '-o', outdir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 150_000,
      env: {
        ...env,
        // Anything that shells out to Docker during synthesis fails with this.
        CDK_DOCKER: path.join(outdir, 'no-docker-here'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(outdir, 'no-credentials'),
        AWS_CONFIG_FILE: path.join(outdir, 'no-config'),
        CDK_DISABLE_CLI_TELEMETRY: 'true',
      },
    });
  });

  it('exits 0 and writes the template', () => {
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    const template = JSON.parse(readFileSync(path.join(outdir, 'KeyspaceLeader.template.json'), 'utf8'));
    expect(Object.keys(template.Resources).length).toBeGreaterThan(50);
  });

  it('bundles the Lambda with the local esbuild into ESM with a real require', () => {
    const assets = JSON.parse(readFileSync(path.join(outdir, 'KeyspaceLeader.assets.json'), 'utf8')) as {
      files: Record<string, { source: { path: string } }>;
    };
    const bundles = Object.values(assets.files)
      .map((f) => path.join(outdir, f.source.path))
      .filter((dir) => statSync(dir).isDirectory() && readdirSync(dir).includes('index.mjs'));
    expect(bundles).toHaveLength(1);
    const code = readFileSync(path.join(bundles[0] as string, 'index.mjs'), 'utf8');
    expect(code).toContain('createRequire');
  });
});
