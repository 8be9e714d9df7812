/**
 * Bundles the worker for its container image: `worker/main.ts` and `worker/healthcheck.ts` become
 * `dist/worker/main.mjs` and `dist/worker/healthcheck.mjs` (ESM, Node 22+), with every production
 * dependency inlined so the image needs no node_modules. Run with `npm run build:worker`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/**
 * CJS dependencies (ioredis, redlock) call `require` for Node built-ins; inside an ESM bundle esbuild's
 * shim throws ("Dynamic require of ... is not supported") unless a real `require` exists in module scope.
 */
const requireBanner =
  "import { createRequire as __klCreateRequire } from 'node:module'; const require = __klCreateRequire(import.meta.url);";

const result = await build({
  absWorkingDir: repoRoot,
  entryPoints: { main: 'worker/main.ts', healthcheck: 'worker/healthcheck.ts' },
  outdir: path.join(repoRoot, 'dist', 'worker'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  banner: { js: requireBanner },
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  logLevel: 'info',
  metafile: true,
});

const outputs = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.mjs'))
  .map(([file, { bytes }]) => `${file} ${(bytes / 1024).toFixed(0)} KiB`);
process.stdout.write(`${JSON.stringify({ event: 'worker.bundled', outputs })}\n`);
