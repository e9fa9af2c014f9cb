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
}

/** Binds at once and serves the app until `signal` aborts; a busy port throws ConfigError. */
export function serve(app: Hono, options: ServeOptions): Deno.HttpServer {
  const { hostname, port } = options;
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
