import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type LocalClusterFile, localClusterFilePath } from '../../core/local-cluster-file.ts';

/**
 * Writes `.local/cluster.json` (format: core/local-cluster-file.ts) for as long as `npm start` runs,
 * and removes it again, with `.local/` when that folder is then empty. Removal is
 * synchronous so it also works from a process 'exit' hook. A file left by a SIGKILLed runner names a
 * dead pid, which readLocalClusterFile ignores; the next `npm start` replaces it.
 */
export class ClusterFileWriter {
  private readonly path: string;
  private written = false;

  constructor(cwd: string) {
    this.path = localClusterFilePath(cwd);
  }

  get filePath(): string {
    return this.path;
  }

  write(content: LocalClusterFile): void {
    const folder = dirname(this.path);
    mkdirSync(folder, { recursive: true });
    // Write then rename: a reader never sees half a file.
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o644 });
    renameSync(temporary, this.path);
    this.written = true;
  }

  /** Removes the file (and `.local/` when it is then empty). Idempotent. */
  removeSync(): void {
    if (this.written) {
      rmSync(this.path, { force: true });
      rmSync(`${this.path}.${process.pid}.tmp`, { force: true });
      this.written = false;
    }
    const folder = dirname(this.path);
    if (existsSync(folder) && readdirSync(folder).length === 0) {
      try {
        rmdirSync(folder);
      } catch {
        // someone put something there meanwhile: leave it
      }
    }
  }
}
