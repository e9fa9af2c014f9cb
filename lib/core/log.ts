/** @module Structured logging: JSON lines, or readable lines on a terminal; the only module that writes to the console. */
import { formatPretty } from "./_log_pretty.ts";

/** Log levels in increasing order of severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** `json`: JSON lines; `pretty`: readable lines; `auto`: pretty when stdout is a terminal. */
export type LogFormat = "auto" | "pretty" | "json";

/** Fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger; `with()` returns a child that adds fields to every line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  service: string;
  level?: LogLevel;
  /** Line format (default `json`); `auto` resolves through {@linkcode resolveLogFormat}. */
  format?: LogFormat;
  /** Where each line goes; defaults to stderr for warn/error and stdout otherwise. */
  write?: (line: string, level: LogLevel) => void;
  now?: () => Date;
}

const ORDER: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};

/** `pretty` when `auto` and stdout is a terminal, else `json` (or the format asked for). */
export function resolveLogFormat(
  format: LogFormat,
  isTerminal: () => boolean = () => Deno.stdout.isTerminal(),
): "pretty" | "json" {
  if (format !== "auto") return format;
  return isTerminal() ? "pretty" : "json";
}

/** Creates a logger: JSON lines `{"time","level","msg","service",...fields}` or readable lines. */
export function createLogger(options: LoggerOptions): Logger {
  const min = ORDER[options.level ?? "info"];
  const write = options.write ?? defaultWrite;
  const now = options.now ?? (() => new Date());
  const pretty = resolveLogFormat(options.format ?? "json") === "pretty";
  // Terminal control only when we write to the terminal ourselves; no colours with NO_COLOR.
  const terminal = pretty && !options.write && Deno.stdout.isTerminal();
  const colour = terminal && !Deno.noColor;
  function make(base: LogFields): Logger {
    function emit(level: LogLevel, msg: string, fields?: LogFields) {
      if (ORDER[level] < min) return;
      const line = { time: now().toISOString(), level, msg, ...base };
      for (const [k, v] of Object.entries(fields ?? {})) {
        (line as LogFields)[k] = v instanceof Error ? serializeError(v) : v;
      }
      write(
        pretty
          ? formatPretty(line, {
            colour,
            clearLine: terminal,
            replacer: jsonReplacer,
          })
          : JSON.stringify(line, jsonReplacer),
        level,
      );
    }
    return {
      debug: (msg, fields) => emit("debug", msg, fields),
      info: (msg, fields) => emit("info", msg, fields),
      warn: (msg, fields) => emit("warn", msg, fields),
      error: (msg, fields) => emit("error", msg, fields),
      with: (fields) => make({ ...base, ...fields }),
    };
  }
  return make({ service: options.service });
}

/** A logger that drops every line (for tests). */
export function noopLogger(): Logger {
  const log: Logger = {
    debug() {},
    info() {},
    warn() {},
    error() {},
    with: () => log,
  };
  return log;
}

/** Serialises an error (and its causes) into plain JSON fields, without stack noise. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & {
    code?: unknown;
    retriable?: unknown;
    status?: unknown;
  };
  const out: LogFields = { name: e.name, message: e.message };
  if (e.code !== undefined) out.code = e.code;
  if (e.status !== undefined) out.status = e.status;
  if (e.retriable !== undefined) out.retriable = e.retriable;
  if (e.cause !== undefined && depth < 3) {
    out.cause = serializeError(e.cause, depth + 1);
  }
  return out;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return serializeError(value);
  return value;
}

function defaultWrite(line: string, level: LogLevel) {
  // deno-lint-ignore no-console
  if (level === "warn" || level === "error") console.error(line);
  // deno-lint-ignore no-console
  else console.log(line);
}

/** Writes one line of a command's output (not a log line) to stdout. */
export function writeLine(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}
