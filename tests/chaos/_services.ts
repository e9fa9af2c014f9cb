/**
 * @module The chaos suite's own Kafka and PostgreSQL (scripts/services.sh on ports of its own),
 * restarted reliably: stop, wait until the old process is gone and its ports are free, start,
 * and retry a start that failed. A restart that still fails is the harness's failure, never the
 * pipeline's.
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const SERVICES = `${ROOT}scripts/services.sh`;

/** Which service and the ports it listens on (Kafka: broker and controller). */
export interface ServicePorts {
  kafka: number[];
  pg: number[];
}

/** Runs `scripts/services.sh <cmd>` with `env`; throws with its stderr when it fails. */
export async function runServices(
  cmd: string,
  env: Record<string, string>,
): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [SERVICES, cmd],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `Cannot run services.sh ${cmd}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/**
 * Stops the service, waits `downMs` (at least until its ports are free), then starts it again,
 * up to `attempts` times. Throws (a harness failure) when every start failed.
 */
export async function restartService(
  service: keyof ServicePorts,
  options: {
    env: Record<string, string>;
    ports: ServicePorts;
    downMs: number;
    attempts?: number;
  },
): Promise<void> {
  const { env, ports } = options;
  const attempts = options.attempts ?? 3;
  await stopUntilFree(service, env, ports[service]);
  await delay(options.downMs);
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await runServices(`start-${service}`, env);
      return;
    } catch (err) {
      last = err;
      // Clean up a half-started process before the next try.
      await stopUntilFree(service, env, ports[service]).catch(() => {});
      await delay(1000 * attempt);
    }
  }
  throw new Error(`Cannot restart ${service} after ${attempts} attempts`, {
    cause: last,
  });
}

/** Stops the service and waits (up to 60 s) until nothing listens on its ports. */
async function stopUntilFree(
  service: keyof ServicePorts,
  env: Record<string, string>,
  ports: number[],
): Promise<void> {
  await runServices(`stop-${service}`, env);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (ports.every(portFree)) return;
    await delay(250);
  }
  throw new Error(
    `${service} still holds port ${ports.join(" or ")} after stop`,
  );
}

/** Whether a listener can bind the port (nothing else holds it). */
function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
