/** @module producer.ts / consumer.ts as child processes, with the last lines of their output kept. */
import { taskArgs, taskOf } from "../_task.ts";

/** A running child and what the harness knows about it. */
export interface Child {
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  /** Set before the harness stops or kills it: its exit is then expected. */
  killed: boolean;
  wasKilled9: boolean;
  /** True once the process has exited. */
  exited: boolean;
  /** The last output lines. */
  tail(): string;
  /** Whether one of the last 40 lines contains `text`. */
  seen(text: string): boolean;
}

/**
 * Spawns `entry` (producer.ts or consumer.ts) as its deno.json task runs it, scoped permissions
 * included, with `env` added to the harness's own environment.
 */
export async function spawnService(
  entry: string,
  args: string[],
  env: Record<string, string>,
  logFile?: string,
): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...(await taskArgs(taskOf(entry), env)), ...args],
    cwd: new URL("../../", import.meta.url),
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        if (logFile) {
          Deno.writeTextFileSync(logFile, buf.slice(0, i + 1), {
            append: true,
          });
        }
        if (lines.length > 40) lines.shift();
        buf = buf.slice(i + 1);
      }
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    handle.exited = true;
    await pumped.catch(() => {});
    return s;
  });
  const handle: Child = {
    child,
    status,
    killed: false,
    wasKilled9: false,
    exited: false,
    tail: () => lines.slice(-8).join("\n"),
    seen: (text: string) => lines.some((l) => l.includes(text)),
  };
  return handle;
}
