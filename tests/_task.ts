/**
 * @module The exact `deno` arguments of a deno.json task, so tests spawn the pipeline with the
 * task's own scoped permissions (never -A): `$(...)` is run with the same environment, as
 * `deno task` does.
 */
const ROOT = new URL("../", import.meta.url);
const TASKS = JSON.parse(
  Deno.readTextFileSync(new URL("deno.json", ROOT)),
).tasks as Record<string, { command: string }>;

/** `deno run ...` of task `name` under `env` (the caller's environment plus `env`), without "deno". */
export async function taskArgs(
  name:
    | "produce"
    | "consume"
    | "migrate"
    | "retention"
    | "audit"
    | "dlq:replay"
    | "start",
  env: Record<string, string> = {},
): Promise<string[]> {
  const command = TASKS[name]?.command;
  if (!command) throw new Error(`No task ${name} in deno.json`);
  const out: string[] = [];
  for (const part of command.split(/(\$\([^)]*\))/)) {
    if (part.startsWith("$(")) {
      out.push(...(await substitute(part.slice(2, -1), env)));
    } else out.push(...part.split(/\s+/).filter(Boolean));
  }
  if (out[0] !== "deno") {
    throw new Error(`Task ${name} does not start with deno`);
  }
  return out.slice(1);
}

/** The words a `$(deno ...)` substitution prints. */
async function substitute(
  inner: string,
  env: Record<string, string>,
): Promise<string[]> {
  const [bin, ...args] = inner.trim().split(/\s+/);
  if (bin !== "deno") throw new Error(`Unexpected substitution: ${inner}`);
  const res = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!res.success) throw new Error(`Substitution failed: ${inner}`);
  return new TextDecoder().decode(res.stdout).split(/\s+/).filter(Boolean);
}

/** Which task runs `entry` (producer.ts, consumer.ts). */
export function taskOf(entry: string): "produce" | "consume" {
  if (entry.endsWith("producer.ts")) return "produce";
  if (entry.endsWith("consumer.ts")) return "consume";
  throw new Error(`No task runs ${entry}`);
}
