/** @module Samples a process tree from /proc: peak resident memory, current RSS and CPU seconds. */

/** What the sampler saw of a process and its descendants. */
export interface TreeUsage {
  /** Sum over the tree's processes of each one's VmHWM (its peak resident set), in KiB. */
  peakKb: number;
  /** The tree's resident set right now (sum of VmRSS), in KiB. */
  rssKb: number;
  /** User + system CPU seconds of every process seen in the tree (the last value read of each). */
  cpuS: number;
}

/** A running sampler; `stop()` takes one last sample and returns the usage. */
export interface TreeSampler {
  now(): TreeUsage;
  stop(): TreeUsage;
}

const TICKS_PER_S = 100; // USER_HZ on Linux

/** Samples `pid` and its descendants every `everyMs` milliseconds. */
export function sampleTree(pid: number, everyMs = 100): TreeSampler {
  const hwm = new Map<number, number>();
  const cpu = new Map<number, number>();
  let rssKb = 0;
  const sample = () => {
    let rss = 0;
    for (const p of treePids(pid)) {
      const status = readOr(`/proc/${p}/status`);
      const peak = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      if (peak > 0) hwm.set(p, Math.max(hwm.get(p) ?? 0, peak));
      const ticks = cpuTicks(p);
      if (ticks > 0) cpu.set(p, ticks);
    }
    rssKb = rss;
  };
  const usage = (): TreeUsage => ({
    peakKb: [...hwm.values()].reduce((a, b) => a + b, 0),
    rssKb,
    cpuS: [...cpu.values()].reduce((a, b) => a + b, 0) / TICKS_PER_S,
  });
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    now() {
      sample();
      return usage();
    },
    stop() {
      sample();
      clearInterval(timer);
      return usage();
    },
  };
}

/** The 1-minute load average (the machine is shared: each figure is printed with it). */
export function loadAverage(): number {
  return Number(readOr("/proc/loadavg").split(" ")[0] ?? NaN);
}

/**
 * CPU seconds of every PostgreSQL process on this machine (its backends, exited ones included:
 * the postmaster's cutime/cstime hold those); the difference of two readings is what PostgreSQL
 * used between them. Null when none is visible (a database elsewhere).
 */
export function postgresCpuS(): number | null {
  let ticks = 0;
  let seen = false;
  for (const p of safeReadDir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const stat = readOr(`/proc/${p}/stat`);
    if (!stat.includes(" (postgres) ")) continue;
    seen = true;
    ticks += cpuTicks(Number(p));
  }
  return seen ? ticks / TICKS_PER_S : null;
}

/** The machine's CPU time so far (all cores), busy and in all, in clock ticks. */
export function machineTicks(): { busy: number; total: number } {
  const cpu = readOr("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1)
    .map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  // idle and iowait are fields 4 and 5 of the cpu line.
  return { busy: total - (cpu[3] ?? 0) - (cpu[4] ?? 0), total };
}

/** `pid` and all its descendants alive now. */
export function treePids(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    for (const task of safeReadDir(`/proc/${p}/task`)) {
      const kids = readOr(`/proc/${p}/task/${task}/children`).trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    }
  }
  return out;
}

/** utime + stime + cutime + cstime of a process, in clock ticks (0 once it is gone). */
function cpuTicks(pid: number): number {
  const stat = readOr(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces: the fields after it start past the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime..cstime are fields 14..17.
  return [11, 12, 13, 14].reduce((a, i) => a + Number(rest[i] ?? 0), 0);
}

function safeReadDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}
