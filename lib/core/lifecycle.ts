/** @module One owner for shutdown: SIGINT/SIGTERM abort one signal; a second signal or a stuck teardown exits 1. */
import type { Logger } from "./log.ts";

/** A shutdown controller; dispose it when teardown is finished. */
export interface Lifecycle extends Disposable {
  signal: AbortSignal;
  /** Aborts as if a signal arrived (used when work finished by itself). */
  stop(reason?: string): void;
}

/** Installs the signal handlers; `hardExitMs` after the first signal the process exits 1. */
export function createLifecycle(log: Logger, hardExitMs = 15_000): Lifecycle {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = (reason = "stop") => {
    if (controller.signal.aborted) return;
    log.info("shutting down", { reason });
    controller.abort(new DOMException(reason, "AbortError"));
    const t = setTimeout(() => {
      log.error("shutdown took too long, exiting", { after_ms: hardExitMs });
      Deno.exit(1);
    }, hardExitMs);
    Deno.unrefTimer(t);
    timer = t;
  };
  let firstAt = 0;
  const onSignal = (name: Deno.Signal) => () => {
    // Ctrl-C reaches both `deno task` (which forwards it) and this process: a repeat within a
    // second is the same keypress, not a request to force the exit.
    if (controller.signal.aborted && Date.now() - firstAt < 1000) return;
    if (controller.signal.aborted) {
      log.warn("second signal, exiting now", { signal: name });
      Deno.exit(1);
    }
    firstAt = Date.now();
    stop(name);
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) =>
    [s, onSignal(s)] as const
  );
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return {
    signal: controller.signal,
    stop,
    [Symbol.dispose]() {
      if (timer !== undefined) clearTimeout(timer);
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    },
  };
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}
