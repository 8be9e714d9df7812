import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem, type } from 'node:os';

/** The machine a benchmark ran on, for the report. */
export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly redis: string;
  readonly date: string;
}

export function describeMachine(now: Date = new Date()): MachineInfo {
  let redis = 'unknown';
  try {
    const text = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    redis = /v=(\S+)/.exec(text)?.[1] ?? text.trim();
  } catch {
    // not on PATH: the cluster would not have started either
  }
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
    redis,
    date: now.toISOString(),
  };
}
