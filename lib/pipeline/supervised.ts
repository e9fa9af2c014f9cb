/** @module The HTTP view of supervised services: checks that name the dependency waited for, and their metrics. */
import type { CheckResult } from "../http/app.ts";
import type { Service, Supervisor } from "../core/supervisor.ts";
import type { SupervisionSample } from "../http/metrics.ts";

/** A service with liveness and readiness checks. */
export interface CheckedService extends Service {
  health(): CheckResult;
  ready(): Promise<CheckResult>;
}

const LABELS: Record<string, string> = {
  kafka: "Kafka",
  postgresql: "PostgreSQL",
};

/** Liveness: the instance's own check; while waiting out an outage the process is alive. */
export function supervisedHealth<S extends CheckedService>(
  sup: Supervisor<S>,
): CheckResult {
  const s = sup.current();
  if (s) return s.health();
  const o = sup.outage();
  return { ok: true, details: o ? { waiting_for: o.dependency } : {} };
}

/** Readiness: 503 naming the dependency while waiting for it, else the instance's own check. */
export async function supervisedReady<S extends CheckedService>(
  sup: Supervisor<S>,
): Promise<CheckResult> {
  const o = sup.outage();
  if (o) {
    return {
      ok: false,
      reason: `${LABELS[o.dependency] ?? o.dependency} unavailable: ${o.error}`,
      details: { ...o },
    };
  }
  const s = sup.current();
  if (!s) return { ok: false, reason: "Starting" };
  return await s.ready();
}

/**
 * Several checks as one: ok when all are, reasons joined; the details of all of them (a
 * failure's win where keys clash), so the producer's source status shows beside the consumer's.
 */
export function allOk(results: CheckResult[]): CheckResult {
  const failed = results.filter((r) => !r.ok);
  const merged = Object.assign(
    {},
    ...[...results.filter((r) => r.ok), ...failed].map((r) => r.details ?? {}),
  );
  const details = Object.keys(merged).length > 0 ? { details: merged } : {};
  if (failed.length === 0) return { ok: true, ...details };
  return {
    ok: false,
    reason: [...new Set(failed.map((r) => r.reason).filter(Boolean))].join(
      "; ",
    ),
    ...details,
  };
}

/** The supervisors' restarts and dependency states, for /metrics. */
export function supervisionSamples(
  sups: Record<string, Supervisor<Service>>,
): () => SupervisionSample[] {
  return () =>
    Object.entries(sups).map(([service, sup]) => ({
      service,
      restarts: sup.restarts(),
      dependencies: sup.dependencyUp(),
    }));
}
