/** @module The consumer's lag and dashboard, read from whichever instance the supervisor runs now. */
import type { Supervisor } from "../core/supervisor.ts";
import type { ConsumerService, LagReport } from "./consumer.ts";
import {
  createDashboardData,
  type DashboardData,
} from "../http/dashboard_data.ts";

/** The running instance's lag; rejects while none runs (an outage). */
export function currentLag(
  sup: Supervisor<ConsumerService>,
): () => Promise<LagReport> {
  return () => {
    const s = sup.current();
    return s
      ? s.lag()
      : Promise.reject(new Error("The consumer is waiting for a dependency"));
  };
}

/** The dashboard over the running instance's monitoring pool (a new one after each restart). */
export function currentDashboard(
  sup: Supervisor<ConsumerService>,
): DashboardData {
  let cached:
    | { db: ConsumerService["monitor"]; data: DashboardData }
    | undefined;
  return {
    snapshot(options) {
      const s = sup.current();
      if (!s) {
        return Promise.reject(
          new Error("The consumer is waiting for a dependency"),
        );
      }
      if (cached?.db !== s.monitor) {
        cached = { db: s.monitor, data: createDashboardData(s.monitor) };
      }
      return cached.data.snapshot(options);
    },
  };
}
