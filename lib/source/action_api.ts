/** @module MediaWiki Action API client: siteinfo and `list=recentchanges` pages, errors classified. */
import type { ApiResponse } from "../schemas/wikimedia.ts";
import { UpstreamError } from "../core/errors.ts";
import { readApiResponse } from "./_api_response.ts";

/** The recentchanges properties requested (not `patrolled`: it needs patrol rights). */
export const RC_PROPS =
  "title|ids|sizes|flags|user|userid|timestamp|comment|loginfo|tags|sha1|redirect";

/** A wiki's identity as resolved through `meta=siteinfo`. */
export interface SiteInfo {
  host: string;
  wiki: string;
  serverName: string;
  /** The server's clock at the time of the request (ISO 8601). */
  now: string;
}

/** One page of `list=recentchanges`. */
export interface RecentChangesPage {
  rows: unknown[];
  /** The `continue` object to send with the next request, or undefined at the end. */
  continue?: Record<string, string>;
  /** The server's clock (ISO 8601), when it sent one. */
  now?: string;
}

/** Where to read: a time range, and the continuation of a walk in progress. */
export interface PageRequest {
  start: string;
  end?: string;
  continue?: Record<string, string>;
  /** Rows per page (`rclimit`); `max` when unset. */
  limit?: number;
}

/** The source the poller reads; the real one talks HTTP, tests may inject another. */
export interface RecentChangesSource {
  siteInfo(host: string, options: { signal?: AbortSignal }): Promise<SiteInfo>;
  fetchPage(
    host: string,
    request: PageRequest,
    options: { signal?: AbortSignal },
  ): Promise<RecentChangesPage>;
}

/** Options for {@linkcode createWikimediaClient}. */
export interface WikimediaClientOptions {
  apiUrlTemplate: string;
  userAgent: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Creates the HTTP client: serial use per wiki is the caller's job; this adds UA, maxlag, timeouts. */
export function createWikimediaClient(
  options: WikimediaClientOptions,
): RecentChangesSource {
  const client = new ActionApiClient(options);
  return {
    siteInfo: (host, opts) => client.siteInfo(host, opts),
    fetchPage: (host, request, opts) => client.fetchPage(host, request, opts),
  };
}

/** Retry-After as milliseconds (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(
  value: string | null,
  now = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) {
    return Math.min(secs * 1000, 3_600_000);
  }
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.min(date - now, 3_600_000));
}

/** The client behind {@linkcode createWikimediaClient}: each query is URL, request, body, checks. */
class ActionApiClient implements RecentChangesSource {
  #options: WikimediaClientOptions;
  #fetch: typeof fetch;

  constructor(options: WikimediaClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
  }

  async siteInfo(
    host: string,
    { signal }: { signal?: AbortSignal },
  ): Promise<SiteInfo> {
    const data = await this.#query(
      host,
      { meta: "siteinfo", siprop: "general" },
      signal,
    );
    const general = data.query?.general;
    if (!general) {
      throw new UpstreamError(
        200,
        "bad_response",
        `Cannot resolve ${host}: no siteinfo`,
        { retriable: true },
      );
    }
    return {
      host,
      wiki: general.wikiid,
      serverName: general.servername ?? host,
      now: data.curtimestamp ?? new Date().toISOString(),
    };
  }

  async fetchPage(
    host: string,
    request: PageRequest,
    { signal }: { signal?: AbortSignal },
  ): Promise<RecentChangesPage> {
    const data = await this.#query(host, recentChangesParams(request), signal);
    const rows = data.query?.recentchanges;
    if (!rows && !data.continue) {
      // No list and nothing to continue: treat as a malformed answer rather than "no changes".
      if (!("batchcomplete" in data) && !data.query) {
        throw new UpstreamError(
          200,
          "bad_response",
          `Cannot use response from ${host}: no recentchanges list`,
          { retriable: true },
        );
      }
    }
    return {
      rows: rows ?? [],
      continue: data.continue,
      now: data.curtimestamp,
    };
  }

  /** One `action=query` round trip: build the URL, send, then read and check the response. */
  async #query(
    host: string,
    params: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<ApiResponse> {
    const url = queryUrl(
      this.#options.apiUrlTemplate.replace("{host}", host),
      params,
    );
    const res = await this.#send(url, host, signal);
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    return await readApiResponse(res, { host, retryAfterMs, signal });
  }

  /** Sends the request with the UA headers and a timeout; a failure to connect is an UpstreamError. */
  async #send(
    url: URL,
    host: string,
    signal?: AbortSignal,
  ): Promise<Response> {
    const doFetch = this.#fetch; // called unbound, like the global `fetch`
    const timeout = AbortSignal.timeout(this.#options.timeoutMs);
    try {
      return await doFetch(url, {
        headers: {
          "user-agent": this.#options.userAgent,
          "api-user-agent": this.#options.userAgent,
          accept: "application/json",
          "accept-encoding": "gzip",
        },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const timedOut = timeout.aborted;
      throw new UpstreamError(
        0,
        timedOut ? "timeout" : "network",
        `Cannot reach ${host}: ${
          timedOut ? "request timed out" : (err as Error).message
        }`,
        { cause: err },
      );
    }
  }
}

/** The API URL with the house parameters (JSON v2, maxlag, server time), then the caller's. */
function queryUrl(base: string, params: Record<string, string>): URL {
  const url = new URL(base);
  const all = {
    action: "query",
    format: "json",
    formatversion: "2",
    maxlag: "5",
    curtimestamp: "1",
    ...params,
  };
  for (const [k, v] of Object.entries(all)) url.searchParams.set(k, v);
  return url;
}

/** The `list=recentchanges` parameters for one request, continuation included. */
function recentChangesParams(request: PageRequest): Record<string, string> {
  const params: Record<string, string> = {
    list: "recentchanges",
    rcdir: "newer",
    rclimit: request.limit ? String(request.limit) : "max",
    rcprop: RC_PROPS,
    rcstart: request.start,
    continue: "",
  };
  if (request.end) params.rcend = request.end;
  Object.assign(params, request.continue ?? {});
  return params;
}
