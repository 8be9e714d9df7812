import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH_DIST = join(REPO_ROOT, 'dist', 'bench');

/**
 * The worker every bench measures (the seed's baseline aside): the bundle the container image runs
 * (worker/bundle.ts, what `npm run build:worker` writes), built once at the start of a bench run. As a
 * JavaScript program it runs without tsx in its process (local/runner/worker-supervisor.ts): under
 * tsx a worker at rest took 264 MiB of RSS instead of 79 (its loader's own thread and heap), and its
 * first events also waited for modules to be transpiled.
 */
export const BUNDLED_WORKER_SCRIPT = join(REPO_ROOT, 'dist', 'worker', 'main.mjs');

/**
 * The bench's own handlers (HANDLER=<path>), built beside it as JavaScript: the bundled worker loads
 * a handler with Node's own `import()`, which takes no TypeScript, as a user's handler in the image.
 */
export const NOOP_HANDLER = join(BENCH_DIST, 'noop-handler.mjs');
export const BURST_HANDLER = join(BENCH_DIST, 'burst-handler.mjs');

let building: Promise<void> | undefined;

/** Builds BUNDLED_WORKER_SCRIPT and the bench handlers from the working tree, once per process. */
export function buildWorkerBundle(): Promise<void> {
  building ??= (async () => {
    await promisify(execFile)(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'worker', 'bundle.ts')], {
      cwd: REPO_ROOT,
    });
    await build({
      absWorkingDir: REPO_ROOT,
      entryPoints: { 'noop-handler': 'bench/noop-handler.ts', 'burst-handler': 'bench/burst-handler.ts' },
      outdir: BENCH_DIST,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'warning',
    });
  })();
  return building;
}
