/** createApp() with HTTP_AUTH_TOKEN, and serve()'s warning when exposed without one. */
import assert from "node:assert/strict";
import { type AppDeps, createApp } from "../../lib/http/app.ts";
import { isLoopback, serve } from "../../lib/http/serve.ts";
import type { DashboardSnapshot } from "../../lib/http/dashboard_data.ts";
import { captureLogger } from "../_helpers.ts";
import { loadConfig } from "../../lib/core/config.ts";

Deno.test.sanitizer({ ops: true, resources: true });

const TOKEN = "s3cret-token-0123456789";

function deps(overrides: Partial<AppDeps> = {}): AppDeps {
  return {
    service: "consumer",
    health: () => ({ ok: true }),
    ready: () => Promise.resolve({ ok: true }),
    lag: () => Promise.resolve({ total_lag: "0", time_lag_seconds: null }),
    metrics: () => "# no samples\n",
    dashboard: {
      snapshot: () => Promise.resolve({ mode: "empty" } as DashboardSnapshot),
    },
    authToken: TOKEN,
    ...overrides,
  };
}

const PROTECTED = [
  "/",
  "/dashboard.js",
  "/api/dashboard",
  "/lag",
  "/metrics",
  "/no-such-page",
];

Deno.test("createApp() with a token answers 401 on every endpoint but the probes without it", async (t) => {
  const app = createApp(deps());
  const cases: [string, Record<string, string>][] = [
    ["no header", {}],
    ["a wrong token", { authorization: "Bearer s3cret-token-0123456780" }],
    ["a prefix of the token", {
      authorization: `Bearer ${TOKEN.slice(0, -1)}`,
    }],
    ["the token without Bearer", { authorization: TOKEN }],
    ["Basic auth", { authorization: `Basic ${btoa(`x:${TOKEN}`)}` }],
  ];
  for (const [what, headers] of cases) {
    await t.step(what, async () => {
      for (const path of PROTECTED) {
        const res = await app.request(path, { headers });
        const body = await res.json();
        assert.equal(res.status, 401, `${path} with ${what}`);
        assert.equal(body.error, "Unauthorized");
        assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer /);
        assert.equal(JSON.stringify(body).includes(TOKEN), false);
      }
    });
  }
});

Deno.test("createApp() with a token serves everything to a request that carries it", async () => {
  const app = createApp(deps());
  for (const path of PROTECTED.slice(0, -1)) {
    const res = await app.request(path, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await res.body?.cancel();
    assert.equal(res.status, 200, path);
  }
  const missing = await app.request("/no-such-page", {
    headers: { authorization: `bearer ${TOKEN}` },
  });
  await missing.body?.cancel();
  assert.equal(missing.status, 404);
});

Deno.test("createApp() with a token leaves /healthz and /readyz open", async () => {
  const app = createApp(deps());
  for (const path of ["/healthz", "/readyz"]) {
    const res = await app.request(path);
    await res.body?.cancel();
    assert.equal(res.status, 200, path);
  }
});

Deno.test("createApp() without a token needs none", async () => {
  const app = createApp(deps({ authToken: undefined }));
  const res = await app.request("/metrics");
  await res.body?.cancel();
  assert.equal(res.status, 200);
});

Deno.test("loadConfig() accepts HTTP_AUTH_TOKEN of 16+ token characters only", () => {
  assert.equal(loadConfig({ HTTP_AUTH_TOKEN: TOKEN }).HTTP_AUTH_TOKEN, TOKEN);
  assert.equal(loadConfig({}).HTTP_AUTH_TOKEN, undefined);
  for (
    const bad of [
      "short",
      "has space in it 0123456789",
      'quote"0123456789abcdef',
    ]
  ) {
    assert.throws(() => loadConfig({ HTTP_AUTH_TOKEN: bad }), (err: Error) => {
      assert.equal(err.name, "ConfigError");
      assert.match(err.message, /HTTP_AUTH_TOKEN/);
      assert.equal(err.message.includes(bad), false, "the value is not echoed");
      return true;
    });
  }
});

Deno.test("isLoopback() knows loopback addresses and names", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
    assert.equal(isLoopback(h), true, h);
  }
  for (const h of ["0.0.0.0", "::", "192.0.2.1", "10.0.0.1", "example.org"]) {
    assert.equal(isLoopback(h), false, h);
  }
});

Deno.test("serve() warns when it binds beyond loopback without a token, and only then", async (t) => {
  const app = createApp(deps({ authToken: undefined }));
  const warned = (log: ReturnType<typeof captureLogger>) =>
    log.lines.some((l) =>
      l.level === "warn" && /HTTP_AUTH_TOKEN/.test(String(l.msg))
    );
  // 192.0.2.1 (TEST-NET-1) is not on this host: binding fails right after the check, so the
  // test never listens beyond loopback.
  await t.step("non-loopback, no token: a warning", () => {
    const log = captureLogger();
    const ac = new AbortController();
    assert.throws(() =>
      serve(app, { hostname: "192.0.2.1", port: 0, signal: ac.signal, log })
    );
    assert.equal(warned(log), true);
  });
  await t.step("non-loopback with a token: none", () => {
    const log = captureLogger();
    const ac = new AbortController();
    assert.throws(() =>
      serve(app, {
        hostname: "192.0.2.1",
        port: 0,
        signal: ac.signal,
        log,
        authenticated: true,
      })
    );
    assert.equal(warned(log), false);
  });
  await t.step("loopback, no token: none", async () => {
    const log = captureLogger();
    const ac = new AbortController();
    const server = serve(app, {
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      log,
    });
    ac.abort();
    await server.finished;
    assert.equal(warned(log), false);
  });
});
