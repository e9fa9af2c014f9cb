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
 * CPU seconds of one PostgreSQL cluster: its postmaster and every process under it, exited
 * backends included (the postmaster's cutime/cstime hold those); the difference of two readings
 * is what the cluster used between them. A backend reaped while the tree is read would be missed
 * (or counted twice): the postmaster's child times are read again after, and the tree again if
 * they moved. Null when the postmaster is not visible here (a database elsewhere).
 */
export function clusterCpuS(postmaster: number): number | null {
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = childTicks(postmaster);
    if (before === null) return null;
    const ticks = treePids(postmaster).reduce((a, p) => a + cpuTicks(p), 0);
    if (childTicks(postmaster) === before) return ticks / TICKS_PER_S;
  }
  return null;
}

/** The parent of a process (0 when it is gone). */
export function parentPid(pid: number): number {
  return Number(statFields(pid)?.[1] ?? 0);
}

/**
 * The machine's CPU time so far, in clock ticks: busy (user, nice, system, irq, softirq) and in
 * all (those, idle, iowait and steal). guest time is already inside user and nice.
 */
export function machineTicks(): { busy: number; total: number } {
  const f = readOr("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1)
    .map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0] = f;
  const [irq = 0, softirq = 0, steal = 0] = f.slice(5);
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait + steal };
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

/** cutime + cstime of a process (its reaped children's CPU), in clock ticks; null once gone. */
function childTicks(pid: number): number | null {
  const rest = statFields(pid);
  return rest ? Number(rest[13] ?? 0) + Number(rest[14] ?? 0) : null;
}

/** utime + stime + cutime + cstime of a process, in clock ticks (0 once it is gone). */
function cpuTicks(pid: number): number {
  const rest = statFields(pid) ?? [];
  return [11, 12, 13, 14].reduce((a, i) => a + Number(rest[i] ?? 0), 0);
}

/**
 * The fields of `/proc/<pid>/stat` from field 3 (state) on: rest[1] is the parent, rest[11..14]
 * utime, stime, cutime, cstime. Null once the process is gone. The command name (field 2) may
 * hold spaces, so the fields after it start past the last ')'.
 */
function statFields(pid: number): string[] | null {
  const stat = readOr(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(")") + 2).split(" ") : null;
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
