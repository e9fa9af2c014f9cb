/** @module Times one sink process from its first row to its last (polling count(*)), with RSS and CPU. */
import type { Sql } from "../../lib/sink/db.ts";
import { loadAverage, sampleTree, treePids } from "../_proc.ts";

/** One system's run. */
export interface SystemRun {
  /** Rows per second from the first row seen in the table to the last. */
  rows_per_s: number;
  /** Rows per second from the process start to the last row. */
  rows_per_s_incl_startup: number;
  startup_ms: number;
  cpu_s: number;
  peak_rss_mb: number;
  load_avg: number;
}

/** Spawns `cmd` with stdout and stderr appended to `log` (exec'd: the pid is the command's). */
export function spawnLogged(
  cmd: string,
  o: { args: string[]; env?: Record<string, string>; log: string },
): Deno.ChildProcess {
  return new Deno.Command("bash", {
    args: ["-c", 'exec "$0" "$@" >>"$PEER_LOG" 2>&1', cmd, ...o.args],
    env: { ...o.env, PEER_LOG: o.log },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** No new row for this long (start-up included) means the sink is stuck. */
const STALL_MS = 180_000;

/**
 * Starts a sink with `spawn`, polls `count(*)` of wiki_recent_changes every 200 ms until it holds
 * `rows` rows (at most 30 minutes), then stops the process tree. CPU seconds and peak RSS cover the
 * whole tree from its start to the last row.
 */
export async function timeSystem(
  name: string,
  spawn: () => Deno.ChildProcess | Promise<Deno.ChildProcess>,
  { sql, rows, log }: { sql: Sql; rows: number; log: string },
): Promise<SystemRun> {
  const t0 = performance.now();
  const child = await spawn();
  const sampler = sampleTree(child.pid, 200);
  let exited = false;
  child.status.then(() => exited = true);
  let first: { at: number; n: number } | undefined;
  let last = { at: t0, n: 0 };
  try {
    while (true) {
      const [c] = await sql<{ n: number }[]>`
        select count(*)::int as n from wiki_recent_changes`;
      const n = c?.n ?? 0;
      const now = performance.now();
      if (n !== last.n) last = { at: now, n };
      if (n > 0 && !first) first = { at: now, n };
      if (n >= rows) {
        const usage = sampler.stop();
        const rate = first!.n >= rows
          ? NaN
          : (rows - first!.n) / ((now - first!.at) / 1000);
        return {
          rows_per_s: Math.round(rate),
          rows_per_s_incl_startup: Math.round(rows / ((now - t0) / 1000)),
          startup_ms: Math.round(first!.at - t0),
          cpu_s: Number(usage.cpuS.toFixed(1)),
          peak_rss_mb: Number((usage.peakKb / 1024).toFixed(1)),
          load_avg: loadAverage(),
        };
      }
      if (exited) {
        throw new Error(
          `${name} exited after ${n} of ${rows} rows; see ${log}`,
        );
      }
      // A sink whose task failed (e.g. a rejected statement) stays up but writes nothing.
      if (now - last.at > STALL_MS) {
        throw new Error(
          `${name} wrote nothing for ${
            STALL_MS / 1000
          } s (at ${n} of ${rows} rows); see ${log}`,
        );
      }
      if (now - t0 > 1_800_000) {
        throw new Error(`${name} did not finish within 30 minutes; see ${log}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    sampler.stop();
    await stopTree(child);
  }
}

/** SIGTERM to the process and its descendants, SIGKILL to any of them left after 10 s. */
async function stopTree(child: Deno.ChildProcess): Promise<void> {
  const pids = treePids(child.pid);
  for (const p of [...pids].reverse()) signal(p, "SIGTERM");
  await child.status;
  for (let i = 0; i < 50 && pids.some(alive); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const p of pids.filter(alive)) signal(p, "SIGKILL");
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}
