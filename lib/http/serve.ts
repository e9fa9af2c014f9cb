/** @module The one-line HTTP server: serves a Hono app with Deno.serve until shutdown. */
import type { Hono } from "hono";
import type { Logger } from "../core/log.ts";

/** Serves the app until `signal` aborts. */
export function serve(
  app: Hono,
  options: { hostname: string; port: number; signal: AbortSignal; log: Logger },
): Deno.HttpServer {
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: ({ hostname, port }) =>
      options.log.info("http listening", { url: `http://${hostname}:${port}` }),
  }, app.fetch);
}
