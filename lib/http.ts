/** @module The HTTP surface (Hono): health, readiness, lag and metrics; a pure app, no listening. */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";

/** A check's answer. */
export interface CheckResult {
  ok: boolean;
  reason?: string;
  details?: Record<string, unknown>;
}

/** What the app reads; each process supplies the parts it has. */
export interface AppDeps {
  service: string;
  /** Liveness: false once the process stopped making progress while work is pending. */
  health(): CheckResult;
  /** Readiness: dependencies answering. */
  ready(): Promise<CheckResult>;
  /** Consumer lag as JSON, when this process consumes. */
  lag?(): Promise<unknown>;
  /** Prometheus text exposition. */
  metrics?(): string | Promise<string>;
}

/** Builds the app; `app.request()` serves tests, `Deno.serve(app.fetch)` serves users. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    const h = deps.health();
    return c.json({
      status: h.ok ? "ok" : "unhealthy",
      service: deps.service,
      ...h,
    }, h.ok ? 200 : 503);
  });
  app.get("/readyz", async (c) => {
    const r = await deps.ready();
    return c.json({
      status: r.ok ? "ready" : "not_ready",
      service: deps.service,
      ...r,
    }, r.ok ? 200 : 503);
  });
  app.get("/lag", async (c) => {
    if (!deps.lag) {
      throw new HTTPException(404, {
        message: "This process does not consume",
      });
    }
    return c.json(await deps.lag());
  });
  app.get("/metrics", async (c) => {
    if (!deps.metrics) throw new HTTPException(404, { message: "No metrics" });
    return c.text(await deps.metrics(), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });
  app.notFound((c) =>
    c.json({ error: "NotFound", message: "No such endpoint" }, 404)
  );
  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      return c.json(
        { error: "HTTPException", message: err.message },
        err.status,
      );
    }
    return c.json({ error: err.name }, 500);
  });
  return app;
}
