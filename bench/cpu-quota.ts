import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A CPU quota for one process, as Fargate limits a task: a cgroup with a CFS quota (cgroup v1's
 * `cpu` controller, cgroup v2's `cpu.max`), the process moved into it with all its threads. Needs a
 * writable cgroup filesystem (root, no container that hides it); `create` says why not otherwise.
 */
export class CpuQuota {
  private constructor(
    private readonly dir: string,
    private readonly procsFile: string,
  ) {}

  /** A fresh cgroup `name` limited to `vcpu` CPUs (0.25 = a quarter of one), or why there is none. */
  static create(name: string, vcpu: number): CpuQuota | { readonly unavailable: string } {
    if (!(vcpu > 0)) throw new RangeError(`vcpu must be > 0, got ${vcpu}`);
    const periodUs = 100_000;
    const quotaUs = Math.round(vcpu * periodUs);
    try {
      if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) {
        const dir = join('/sys/fs/cgroup/cpu', name);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'cpu.cfs_period_us'), String(periodUs));
        writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
        return new CpuQuota(dir, join(dir, 'cgroup.procs'));
      }
      const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
      if (!controllers.split(/\s+/).includes('cpu')) return { unavailable: 'no cpu controller in cgroup v2' };
      const dir = join('/sys/fs/cgroup', name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cpu.max'), `${quotaUs} ${periodUs}`);
      return new CpuQuota(dir, join(dir, 'cgroup.procs'));
    } catch (error) {
      return {
        unavailable: `no writable cpu cgroup (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      };
    }
  }

  /** Moves process `pid` (every thread of it) into the quota. */
  add(pid: number): void {
    writeFileSync(this.procsFile, String(pid));
  }

  /** Removes the cgroup once its processes are gone (a cgroup with processes stays; harmless). */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      // Still in use (a process outlived its stop) or already gone.
    }
  }
}
