/** @module The HTTP surface (Hono): health, readiness, lag, metrics and the dashboard; a pure app, no listening. */
import { type Context, Hono, type Next } from "hono";
import { HTTPException } from "hono/http-exception";
import { timingSafeEqual } from "hono/utils/buffer";
import {
  type DashboardData,
  isWindowKey,
  type WindowKey,
} from "./dashboard_data.ts";
import { sharedFor } from "./_shared.ts";
import { explainError } from "../core/errors.ts";
import {
  DASHBOARD_HTML,
  DASHBOARD_JS,
  NO_DASHBOARD_HTML,
} from "./_dashboard_page.ts";

/** A check's answer. */
export interface CheckResult {
  ok: boolean;
  reason?: string;
  details?: Record<string, unknown>;
}

/** The parts of a lag report the dashboard reads (the full report is served as is on /lag). */
export interface LagView {
  total_lag: string;
  time_lag_seconds: number | null;
}

/** Where one wiki's source stands (the producer's view), for /healthz and the dashboard. */
export interface SourceStatus {
  wiki: string;
  /** `starting`: no poll finished yet; `retrying`: waiting out a backoff after an error. */
  state: "ok" | "starting" | "retrying" | "stalled";
  last_success: string | null;
  last_error: { at: string; name: string; message: string } | null;
  /** Seconds until the next attempt while retrying, else null. */
  retry_in_seconds: number | null;
}

/** What the app reads; each process supplies the parts it has. */
export interface AppDeps {
  service: string;
  /** Liveness: false once the process stopped making progress while work is pending. */
  health(): CheckResult;
  /** Readiness: dependencies answering. */
  ready(): Promise<CheckResult>;
  /** Consumer lag as JSON, when this process consumes. */
  lag?(): Promise<LagView>;
  /** Prometheus text exposition. */
  metrics?(): string | Promise<string>;
  /** The dashboard's data, when this process has a database. */
  dashboard?: DashboardData;
  /** When set, every endpoint but /healthz and /readyz needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** The dashboard's refresh interval: its data is computed at most once per interval (5000). */
  dashboardIntervalMs?: number;
  /** /readyz, /lag and /metrics are computed at most once per this many ms (1000). */
  checkIntervalMs?: number;
  /** Each wiki's source status, when this process produces. */
  sources?(): SourceStatus[];
}

/** Endpoints that answer without a token: probes must not need a secret. */
const OPEN_PATHS = new Set(["/healthz", "/readyz"]);

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Builds the app; `app.request()` serves tests, `Deno.serve(app.fetch)` serves users. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.use(readOnlyHeaders);
  if (deps.authToken !== undefined) app.use(requireToken(deps.authToken));
  const shared = sharedDeps(deps);
  routeChecks(app, shared);
  routeDashboard(app, shared);
  app.notFound((c) =>
    c.json({ error: "NotFound", message: "No such endpoint" }, 404)
  );
  app.onError(errorResponse);
  return app;
}

/** Answers 405 to anything but GET and HEAD; marks every answer nosniff and no-store. */
async function readOnlyHeaders(
  c: Context,
  next: Next,
): Promise<Response | void> {
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    return c.json(
      { error: "MethodNotAllowed", message: "This endpoint is read-only" },
      405,
      { allow: "GET, HEAD" },
    );
  }
  await next();
  c.header("x-content-type-options", "nosniff");
  c.header("cache-control", "no-store");
}

/** What the routes read: every costly call shared per interval, so clients cannot add load. */
interface SharedDeps
  extends Pick<AppDeps, "service" | "health" | "ready" | "sources"> {
  lag?: () => Promise<LagView>;
  metrics?: () => Promise<string>;
  /** One shared snapshot per window (at most five: the four keys and the default). */
  dashboard?: (
    window?: WindowKey,
  ) => Promise<{ data: unknown; lag: LagView | null }>;
}

function sharedDeps(deps: AppDeps): SharedDeps {
  const every = deps.checkIntervalMs ?? 1000;
  const lag = deps.lag && sharedFor(deps.lag, every);
  const metrics = deps.metrics;
  const dashboard = deps.dashboard;
  return {
    service: deps.service,
    health: deps.health,
    ready: sharedFor(deps.ready, every),
    lag,
    metrics: metrics && sharedFor(async () => await metrics(), every),
    sources: deps.sources,
    dashboard: dashboard && perWindow((window) =>
      sharedFor(
        async () => {
          const [data, l] = await Promise.all([
            dashboard.snapshot({ window }).catch((err) => {
              // Name the dependency and what it said (passwords masked), not just the class.
              throw new HTTPException(503, {
                message: `PostgreSQL unavailable: ${explainError(err)}`,
              });
            }),
            lag?.().then(
              (v): LagView => ({
                total_lag: v.total_lag,
                time_lag_seconds: v.time_lag_seconds,
              }),
              () => null,
            ) ?? null,
          ]);
          return { data, lag: l };
        },
        deps.dashboardIntervalMs ?? 5000,
      )
    ),
  };
}

/** One shared function per window key, made on first use. */
function perWindow<T>(
  make: (window?: WindowKey) => () => Promise<T>,
): (window?: WindowKey) => Promise<T> {
  const byKey = new Map<string, () => Promise<T>>();
  return (window) => {
    const key = window ?? "";
    let fn = byKey.get(key);
    if (!fn) byKey.set(key, fn = make(window));
    return fn();
  };
}

/** Answers 401 unless the request carries `Authorization: Bearer <token>` (but on OPEN_PATHS). */
function requireToken(token: string) {
  return async (c: Context, next: Next): Promise<Response | void> => {
    if (OPEN_PATHS.has(c.req.path)) return await next();
    const given = /^Bearer +(\S+) *$/i.exec(c.req.header("authorization") ?? "")
      ?.[1];
    if (given === undefined || !(await timingSafeEqual(given, token))) {
      return c.json(
        {
          error: "Unauthorized",
          message:
            "This endpoint needs the header Authorization: Bearer <HTTP_AUTH_TOKEN>",
        },
        401,
        { "www-authenticate": 'Bearer realm="wikistream"' },
      );
    }
    await next();
  };
}

/** The operator's endpoints: /healthz, /readyz, /lag and /metrics. */
function routeChecks(app: Hono, deps: SharedDeps): void {
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
}

/** The dashboard: its page, its script and its data (shared by every client per interval). */
function routeDashboard(app: Hono, deps: SharedDeps): void {
  app.get("/", (c) => {
    c.header("content-security-policy", CSP);
    const page = deps.dashboard ? DASHBOARD_HTML : NO_DASHBOARD_HTML;
    return c.html(page.replaceAll("{{service}}", escapeHtml(deps.service)));
  });
  app.get("/dashboard.js", (c) =>
    c.body(DASHBOARD_JS, 200, {
      "content-type": "text/javascript; charset=utf-8",
    }));
  app.get("/api/dashboard", async (c) => {
    if (!deps.dashboard) {
      throw new HTTPException(404, {
        message: "This process has no database, so no dashboard",
      });
    }
    const window = c.req.query("window");
    if (window !== undefined && !isWindowKey(window)) {
      throw new HTTPException(400, {
        message: "Invalid window: expected 1h, 24h, 7d or all",
      });
    }
    return c.json({
      ...await deps.dashboard(window),
      sources: deps.sources?.() ?? null,
    });
  });
}

/** Expected errors keep their status and message; others answer 500 with the class alone. */
function errorResponse(err: Error, c: Context): Response {
  if (err instanceof HTTPException) {
    return c.json(
      { error: "HTTPException", message: err.message },
      err.status,
    );
  }
  // Only the error's class: messages can carry connection strings or query text.
  return c.json({ error: err.name }, 500);
}

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        ch
      ]!,
  );
}
