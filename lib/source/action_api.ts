/** @module MediaWiki Action API client: siteinfo and `list=recentchanges` pages, errors classified. */
import { ApiResponseSchema } from "../schemas/wikimedia.ts";
import { UpstreamError } from "../core/errors.ts";

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

/** Errors the API reports in a 200 body that are worth retrying. */
const RETRIABLE_API_CODES =
  /^(maxlag|readonly|ratelimited|internal_api_error_DBQueryTimeoutError|internal_api_error_DBQueryError|internal_api_error_DBConnectionError)$/;

/** Creates the HTTP client: serial use per wiki is the caller's job; this adds UA, maxlag, timeouts. */
export function createWikimediaClient(
  options: WikimediaClientOptions,
): RecentChangesSource {
  const doFetch = options.fetch ?? fetch;

  async function call(
    host: string,
    params: Record<string, string>,
    signal?: AbortSignal,
  ) {
    const url = new URL(options.apiUrlTemplate.replace("{host}", host));
    const all = {
      action: "query",
      format: "json",
      formatversion: "2",
      maxlag: "5",
      curtimestamp: "1",
      ...params,
    };
    for (const [k, v] of Object.entries(all)) url.searchParams.set(k, v);
    const timeout = AbortSignal.timeout(options.timeoutMs);
    let res: Response;
    try {
      res = await doFetch(url, {
        headers: {
          "user-agent": options.userAgent,
          "api-user-agent": options.userAgent,
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
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new UpstreamError(
        res.status,
        "truncated",
        `Cannot read response from ${host}: ${(err as Error).message}`,
        { cause: err, retriable: true, retryAfterMs },
      );
    }
    if (!res.ok) {
      throw new UpstreamError(
        res.status,
        `http_${res.status}`,
        `Cannot fetch recent changes from ${host}: status ${res.status}`,
        { retryAfterMs },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      const html = /^\s*</.test(text);
      throw new UpstreamError(
        res.status,
        html ? "html_body" : "invalid_json",
        `Cannot parse response from ${host}: ${
          html ? "got an HTML page" : "invalid JSON"
        }`,
        { cause: err, retriable: true, retryAfterMs },
      );
    }
    const parsed = ApiResponseSchema.safeParse(json);
    if (!parsed.success) {
      throw new UpstreamError(
        res.status,
        "bad_response",
        `Cannot use response from ${host}: unexpected shape`,
        { retriable: true },
      );
    }
    const apiError = parsed.data.error ?? parsed.data.errors?.[0];
    if (apiError) {
      const code = apiError.code;
      const retriable = RETRIABLE_API_CODES.test(code);
      const wait = code === "maxlag"
        ? Math.max(retryAfterMs ?? 0, 5000)
        : retryAfterMs;
      throw new UpstreamError(
        res.status,
        code,
        `Cannot fetch recent changes from ${host}: API error ${code}`,
        { retriable, retryAfterMs: wait },
      );
    }
    return parsed.data;
  }

  return {
    async siteInfo(host, { signal }) {
      const data = await call(
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
    },
    async fetchPage(host, request, { signal }) {
      const params: Record<string, string> = {
        list: "recentchanges",
        rcdir: "newer",
        rclimit: "max",
        rcprop: RC_PROPS,
        rcstart: request.start,
        continue: "",
      };
      if (request.end) params.rcend = request.end;
      Object.assign(params, request.continue ?? {});
      const data = await call(host, params, signal);
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
    },
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
