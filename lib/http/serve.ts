/** @module The one-line HTTP server: serves a Hono app with Deno.serve until shutdown. */
import type { Hono } from "hono";
import type { Logger } from "../core/log.ts";
import { ConfigError } from "../core/errors.ts";

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  hostname: string;
  port: number;
  signal: AbortSignal;
  log: Logger;
  /** The variable that sets the port, named when the port is busy (default HTTP_PORT). */
  portVariable?: string;
  /** Whether the app requires a bearer token (HTTP_AUTH_TOKEN); without one, a warning when exposed. */
  authenticated?: boolean;
}

/**
 * Binds at once and serves the app until `signal` aborts; a busy port throws ConfigError. Warns
 * when it binds beyond loopback without a token.
 */
export function serve(app: Hono, options: ServeOptions): Deno.HttpServer {
  const { hostname, port } = options;
  if (!options.authenticated && !isLoopback(hostname)) {
    options.log.warn(
      "HTTP endpoints are reachable beyond this host without a token: set HTTP_AUTH_TOKEN",
      { host: hostname },
    );
  }
  try {
    return Deno.serve({
      hostname,
      port,
      signal: options.signal,
      onListen: (addr) =>
        options.log.info("http listening", {
          url: `http://${addr.hostname}:${addr.port}`,
        }),
    }, app.fetch);
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    throw new ConfigError(
      `Cannot listen on ${hostname}:${port}: the port is in use; set ${
        options.portVariable ?? "HTTP_PORT"
      } to a free port`,
      { cause: err },
    );
  }
}

/** Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}
