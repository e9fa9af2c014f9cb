/** @module Readable log lines for a terminal: time, level, message, then the fields. */

/** Options for {@linkcode formatPretty}. */
export interface PrettyOptions {
  /** Colour the level with ANSI escapes. */
  colour: boolean;
  /** Start with "clear this terminal line" (a progress bar may be drawn there). */
  clearLine: boolean;
  /** Turns bigints and errors into JSON-friendly values. */
  replacer: (key: string, value: unknown) => unknown;
}

const COLOURS: Record<string, string> = {
  debug: "\x1b[90m",
  info: "\x1b[36m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
};
const RESET = "\x1b[0m";
/** Fields a terminal reader does not need on every line. */
const QUIET = new Set(["time", "level", "msg", "service", "stack"]);

/**
 * `16:46:43 INFO  producer checkpoints restored wikis=en.wikipedia.org`; text with line
 * breaks (messages, error messages) continues on indented lines instead of showing `\n`.
 */
export function formatPretty(
  line: Record<string, unknown>,
  { colour, clearLine, replacer }: PrettyOptions,
): string {
  const time = String(line.time ?? "").slice(11, 19);
  const level = String(line.level ?? "info");
  const tag = level.toUpperCase().padEnd(5);
  const who = [line.service, line.component].filter(Boolean).join("/");
  const extra: string[] = [];
  const parts: string[] = [];
  for (const [key, value] of Object.entries(line)) {
    if (QUIET.has(key) || key === "component" || value === undefined) continue;
    const text = fieldText(value, replacer);
    if (text.includes("\n")) extra.push(`${key}: ${text}`);
    else parts.push(`${key}=${text}`);
  }
  const [first = "", ...rest] = String(line.msg ?? "").split("\n");
  const head = [
    time,
    colour ? `${COLOURS[level] ?? ""}${tag}${RESET}` : tag,
    who,
    first,
    ...parts,
  ].filter(Boolean).join(" ");
  const more = [...rest, ...extra.flatMap((t) => t.split("\n"))];
  // Clears a progress bar the line may be drawn over (the bar redraws on its next update).
  return (clearLine ? "\r\x1b[K" : "") +
    [head, ...more.map((l) => `    ${l}`)].join("\n");
}

function fieldText(
  value: unknown,
  replacer: (key: string, value: unknown) => unknown,
): string {
  const v = replacer("", value);
  if (typeof v === "string") {
    return /[\s"=]/.test(v) && !v.includes("\n") ? JSON.stringify(v) : v;
  }
  if (isErrorLike(v)) return errorText(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) {
    return v.join(",");
  }
  return JSON.stringify(v, replacer) ?? String(v);
}

interface ErrorLike {
  name: string;
  message: string;
  code?: unknown;
  cause?: unknown;
}

function isErrorLike(v: unknown): v is ErrorLike {
  return typeof v === "object" && v !== null && "name" in v &&
    "message" in v;
}

/** `UpstreamError: Cannot fetch recent changes: status 503 (code 503) <- TypeError: ...` */
function errorText(e: ErrorLike): string {
  const code = e.code !== undefined ? ` (code ${String(e.code)})` : "";
  const own = `${e.name}: ${e.message}${code}`;
  return isErrorLike(e.cause) ? `${own} <- ${errorText(e.cause)}` : own;
}
