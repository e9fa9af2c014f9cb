/** @module Turns one Action API response into checked data, or a classified UpstreamError. */
import { type ApiResponse, ApiResponseSchema } from "../schemas/wikimedia.ts";
import { UpstreamError } from "../core/errors.ts";

/** What the checks need besides the response itself. */
export interface ReadApiResponseOptions {
  host: string;
  /** The response's Retry-After, in milliseconds. */
  retryAfterMs: number | undefined;
  signal?: AbortSignal;
}

/** Errors the API reports in a 200 body that are worth retrying. */
const RETRIABLE_API_CODES =
  /^(maxlag|readonly|ratelimited|internal_api_error_DBQueryTimeoutError|internal_api_error_DBQueryError|internal_api_error_DBConnectionError)$/;

/** Reads the body, then checks status, JSON, shape and API error, in that order. */
export async function readApiResponse(
  res: Response,
  options: ReadApiResponseOptions,
): Promise<ApiResponse> {
  const reply: Reply = { ...options, status: res.status };
  const text = await readBody(res, reply);
  if (!res.ok) throw httpError(reply);
  const data = decodeBody(text, reply);
  throwIfApiError(data, reply);
  return data;
}

/** What the error classifiers need to know about one response. */
interface Reply extends ReadApiResponseOptions {
  status: number;
}

/** The body as text; a body cut off mid-read is a retriable `truncated` error. */
async function readBody(res: Response, reply: Reply): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    if (reply.signal?.aborted) throw err;
    throw new UpstreamError(
      reply.status,
      "truncated",
      `Cannot read response from ${reply.host}: ${(err as Error).message}`,
      { cause: err, retriable: true, retryAfterMs: reply.retryAfterMs },
    );
  }
}

/** The error for a non-2xx status. */
function httpError(reply: Reply): UpstreamError {
  return new UpstreamError(
    reply.status,
    `http_${reply.status}`,
    `Cannot fetch recent changes from ${reply.host}: status ${reply.status}`,
    { retryAfterMs: reply.retryAfterMs },
  );
}

/** Parses the body as JSON and checks its shape; an HTML page or a bad shape is retriable. */
function decodeBody(text: string, reply: Reply): ApiResponse {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const html = /^\s*</.test(text);
    throw new UpstreamError(
      reply.status,
      html ? "html_body" : "invalid_json",
      `Cannot parse response from ${reply.host}: ${
        html ? "got an HTML page" : "invalid JSON"
      }`,
      { cause: err, retriable: true, retryAfterMs: reply.retryAfterMs },
    );
  }
  const parsed = ApiResponseSchema.safeParse(json);
  if (!parsed.success) {
    throw new UpstreamError(
      reply.status,
      "bad_response",
      `Cannot use response from ${reply.host}: unexpected shape`,
      { retriable: true },
    );
  }
  return parsed.data;
}

/** Throws the error an API reports in a 200 body; maxlag waits at least 5 s. */
function throwIfApiError(data: ApiResponse, reply: Reply): void {
  const apiError = data.error ?? data.errors?.[0];
  if (!apiError) return;
  const code = apiError.code;
  const retriable = RETRIABLE_API_CODES.test(code);
  const wait = code === "maxlag"
    ? Math.max(reply.retryAfterMs ?? 0, 5000)
    : reply.retryAfterMs;
  throw new UpstreamError(
    reply.status,
    code,
    `Cannot fetch recent changes from ${reply.host}: API error ${code}`,
    { retriable, retryAfterMs: wait },
  );
}
