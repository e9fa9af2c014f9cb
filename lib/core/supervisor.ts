/** @module Keeps a service running through outages of its dependencies: restart with capped backoff, status for /readyz. */
import { describeError, isFatal as defaultIsFatal } from "./errors.ts";
import type { Logger } from "./log.ts";
import { backoffDelay, sleep as defaultSleep } from "./retry.ts";

/** What the supervisor runs: a started service that settles `done` and can be closed. */
export interface Service {
  /** Resolves when the service finished on its own or on abort; rejects when it failed. */
  done: Promise<void>;
  close(): Promise<void>;
}

/** A dependency the service is waiting for. */
export interface Outage {
  dependency: string;
  /** The error's class and code (never its message: it may carry connection details). */
  error: string;
  /** When the first failure of this outage happened (ISO-8601). */
  since: string;
  /** Failed starts in this outage. */
  attempts: number;
  /** Milliseconds until the next start. */
  retry_in_ms: number;
}

/** Options for {@linkcode createSupervisor}. */
export interface SupervisorOptions<S extends Service> {
  /** The service's name in logs and metrics ("producer", "consumer"). */
  name: string;
  /** The dependencies the service has, for the up/down gauge. */
  dependencies: string[];
  /** Starts one instance (a fresh client each call); may throw. */
  start(signal: AbortSignal): Promise<S>;
  /** Names the dependency an error came from. */
  dependencyOf(err: unknown): string;
  log: Logger;
  signal: AbortSignal;
  /** Backoff between starts: 1 s doubling to `maxDelayMs` (30 s), with jitter. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** An outage is logged when it starts, then at most once per this interval (60 s). */
  logEveryMs?: number;
  /**
   * An outage is over (backoff and attempts reset, one "running again" line) only once the
   * restarted instance has run this long (60 s): one that starts and fails at once keeps backing
   * off and logging once per interval, instead of restarting every second.
   */
  stableMs?: number;
  isFatal?(err: unknown): boolean;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A supervised service: the running instance (if any), the outage (if any), restarts. */
export interface Supervisor<S extends Service> {
  /** Runs until the service finishes or the signal aborts; rejects with a fatal error. */
  run(): Promise<void>;
  current(): S | undefined;
  outage(): Outage | undefined;
  /** Dependency name to 1 (up) or 0 (waited for). */
  dependencyUp(): Map<string, number>;
  /** Starts after the first one. */
  restarts(): number;
  /** A running instance reports a dependency failing (false) or answering again (true). */
  mark(dependency: string, up: boolean): void;
}

/** Creates the supervisor; nothing starts before `run()`. */
export function createSupervisor<S extends Service>(
  options: SupervisorOptions<S>,
): Supervisor<S> {
  const state: State<S> = {
    current: undefined,
    outage: undefined,
    starts: 0,
    down: new Set(),
  };
  return {
    run: () => runLoop(options, state),
    current: () => state.current,
    outage: () =>
      state.outage && {
        ...state.outage.public,
        retry_in_ms: Math.max(0, state.outage.nextAt - Date.now()),
      },
    dependencyUp: () =>
      new Map(options.dependencies.map((d) => [
        d,
        state.outage?.public.dependency === d || state.down.has(d) ? 0 : 1,
      ])),
    restarts: () => Math.max(0, state.starts - 1),
    mark(dependency, up) {
      if (up) state.down.delete(dependency);
      else state.down.add(dependency);
    },
  };
}

interface OutageState {
  public: Omit<Outage, "retry_in_ms">;
  nextAt: number;
  loggedAt: number;
}

interface State<S> {
  current: S | undefined;
  /** The outage being waited out (reported on /readyz). */
  outage: OutageState | undefined;
  /** The last outage, while a restarted instance has not yet run `stableMs`. */
  recent?: OutageState;
  starts: number;
  /** Dependencies a running instance reported failing. */
  down: Set<string>;
}

/** Start, wait for `done`, and on an outage close, back off and start again. */
async function runLoop<S extends Service>(
  options: SupervisorOptions<S>,
  state: State<S>,
): Promise<void> {
  const { signal } = options;
  while (!signal.aborted) {
    let service: S | undefined;
    let stable: ReturnType<typeof setTimeout> | undefined;
    try {
      state.starts++;
      service = await startUnlessAborted(options);
      if (!service) return;
      state.current = service;
      state.down.clear();
      stable = running(options, state);
      await service.done;
      return; // finished on its own (--until, --idle-exit) or on abort
    } catch (err) {
      if (signal.aborted) return;
      if ((options.isFatal ?? defaultIsFatal)(err)) throw err;
      await service?.close().catch(() => {});
      state.current = undefined;
      await waitOut(options, state, err);
    } finally {
      clearTimeout(stable);
    }
  }
}

/** Starts an instance; on abort gives up waiting (and closes the instance once it settles). */
async function startUnlessAborted<S extends Service>(
  options: SupervisorOptions<S>,
): Promise<S | undefined> {
  const { signal } = options;
  const starting = options.start(signal);
  const aborted = new Promise<undefined>((resolve) => {
    if (signal.aborted) resolve(undefined);
    signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
  const first = await Promise.race([starting, aborted]);
  if (first === undefined) {
    starting.then((s) => s.close(), () => {});
  }
  return first;
}

/** Records the failure, logs it (once per interval) and sleeps the backoff. */
async function waitOut<S extends Service>(
  options: SupervisorOptions<S>,
  state: State<S>,
  err: unknown,
): Promise<void> {
  const { log, name } = options;
  const dependency = options.dependencyOf(err);
  const now = Date.now();
  const prev = state.outage ?? state.recent;
  state.recent = undefined;
  const attempts = prev && prev.public.dependency === dependency
    ? prev.public.attempts + 1
    : 1;
  const delay = backoffDelay(attempts - 1, {
    minTimeout: options.minDelayMs ?? 1000,
    maxTimeout: options.maxDelayMs ?? 30_000,
    jitter: 0.2,
  });
  const since = attempts > 1 ? prev!.public.since : new Date(now).toISOString();
  const fields = { dependency, err, attempts, since, retry_in_ms: delay };
  let loggedAt = prev?.loggedAt ?? 0;
  if (attempts === 1) {
    log.warn(`${name} cannot reach ${dependency}, waiting for it`, fields);
    loggedAt = now;
  } else if (now - loggedAt >= (options.logEveryMs ?? 60_000)) {
    log.warn(`${name} still waiting for ${dependency}`, fields);
    loggedAt = now;
  }
  state.outage = {
    public: { dependency, error: describeError(err), since, attempts },
    nextAt: now + delay,
    loggedAt,
  };
  await (options.sleep ?? defaultSleep)(delay, options.signal).catch(() => {});
}

/**
 * An instance runs: the outage is no longer reported, but remembered (backoff, attempts) until the
 * instance has run `stableMs`; then it is over, with one log line. Returns that timer.
 */
function running<S extends Service>(
  options: SupervisorOptions<S>,
  state: State<S>,
): ReturnType<typeof setTimeout> | undefined {
  state.recent = state.outage ?? state.recent;
  state.outage = undefined;
  if (!state.recent) return undefined;
  return setTimeout(
    () => recovered(options, state),
    options.stableMs ?? 60_000,
  );
}

/** Ends the remembered outage with one log line. */
function recovered<S extends Service>(
  options: SupervisorOptions<S>,
  state: State<S>,
): void {
  const o = state.recent;
  if (!o) return;
  state.recent = undefined;
  options.log.info(`${options.name} running again`, {
    dependency: o.public.dependency,
    down_s: Math.round((Date.now() - Date.parse(o.public.since)) / 1000),
    attempts: o.public.attempts,
  });
}
