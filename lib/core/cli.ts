/** @module Shared entrypoint plumbing: flags, `--help`, and config errors (exit 2). */
import { parseArgs } from "node:util";
import { type Config, loadConfig } from "./config.ts";
import { ConfigError, DEAD_LETTER_REASONS } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { type CommandName, usageText } from "./_usage.ts";

export type { CommandName };

/** Parsed flags of all entrypoints. */
export interface Flags {
  since?: string;
  until?: string;
  idleExitMs?: number;
  /** `--wikis a,b`: host names (the audit). */
  wikis?: string[];
  /** `--repair` (the audit). */
  repair?: boolean;
  /** `--reason a,b` (repeatable): dead-letter reasons (dlq:replay). */
  reasons?: string[];
  /** `--limit N`: at most N dead letters (dlq:replay). */
  limit?: number;
  /** `--dry-run`: count, write nothing (dlq:replay). */
  dryRun?: boolean;
  /** `--include-replayed`: dead letters already replayed too (dlq:replay). */
  includeReplayed?: boolean;
}

/** Flag names as typed, for the ones whose key differs. */
const KEYS: Record<string, keyof Flags> = {
  "idle-exit": "idleExitMs",
  reason: "reasons",
  "dry-run": "dryRun",
  "include-replayed": "includeReplayed",
};

/** Parses flags; throws ConfigError naming the bad flag. */
export function parseFlags(args: string[], allowed: (keyof Flags)[]): Flags {
  const options = {
    since: { type: "string" },
    until: { type: "string" },
    "idle-exit": { type: "string" },
    wikis: { type: "string" },
    repair: { type: "boolean" },
    reason: { type: "string", multiple: true },
    limit: { type: "string" },
    "dry-run": { type: "boolean" },
    "include-replayed": { type: "boolean" },
  } as const;
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`Invalid flags: ${(err as Error).message}`);
  }
  const flags: Flags = {};
  const allow = new Set<string>(allowed);
  for (const [name, value] of Object.entries(values)) {
    const key = KEYS[name] ?? name as keyof Flags;
    if (!allow.has(key)) {
      throw new ConfigError(`Invalid flags: --${name} is not accepted here`);
    }
    setFlag(flags, key, value);
  }
  if (flags.since && flags.until && flags.since > flags.until) {
    throw new ConfigError("Invalid flags: --since is after --until");
  }
  return flags;
}

/** Sets one parsed flag; throws ConfigError on a bad value. */
function setFlag(flags: Flags, key: keyof Flags, value: unknown): void {
  if (key === "since" || key === "until") {
    flags[key] = parseTime(key, value);
  } else if (key === "wikis") {
    flags.wikis = parseWikis(String(value));
  } else if (key === "reasons") {
    flags.reasons = parseReasons(value as string[]);
  } else if (key === "limit") {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1 || !/^\d+$/.test(String(value))) {
      throw new ConfigError("Invalid flag --limit: expected an integer >= 1");
    }
    flags.limit = n;
  } else if (
    key === "repair" || key === "dryRun" || key === "includeReplayed"
  ) {
    flags[key] = value === true;
  } else {
    const secs = Number(value);
    if (!Number.isFinite(secs) || secs < 0) {
      throw new ConfigError(
        `Invalid flag --idle-exit: expected seconds >= 0`,
      );
    }
    flags.idleExitMs = secs * 1000;
  }
}

/** A date (UTC midnight) or a time with its offset, e.g. 2024-04-26 or 2024-04-26T10:00:00Z. */
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * An ISO-8601 date or time as UTC ISO text. A time must carry its offset (Z or ±HH:MM: never
 * the machine's zone), and every field must exist (no 2024-02-30, no 24:00).
 */
function parseTime(key: "since" | "until", value: unknown): string {
  const m = typeof value === "string" ? ISO_TIME.exec(value) : null;
  const [y, mo, d, h = "0", mi = "0", sec = "0"] = m ? m.slice(1) : [];
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (
    !m || day.getUTCMonth() !== Number(mo) - 1 ||
    day.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 ||
    Number(sec) > 59
  ) {
    throw new ConfigError(
      `Invalid flag --${key}: expected an ISO-8601 date or a time with its offset, such as 2024-04-26 or 2024-04-26T00:00:00Z`,
    );
  }
  return new Date(value as string).toISOString();
}

/** `--reason a,b --reason c`: known reasons, each once, in the order given. */
function parseReasons(values: string[]): string[] {
  const reasons = values.flatMap((v) => v.split(",")).map((r) => r.trim())
    .filter(Boolean);
  const known = new Set<string>(DEAD_LETTER_REASONS);
  const bad = reasons.filter((r) => !known.has(r));
  if (reasons.length === 0 || bad.length > 0) {
    throw new ConfigError(
      `Invalid flag --reason: ${
        bad.length > 0 ? `unknown reason "${bad[0]}"` : "no reason given"
      }; expected one or more of ${DEAD_LETTER_REASONS.join(", ")}`,
    );
  }
  return [...new Set(reasons)];
}

function parseWikis(value: string): string[] {
  const hosts = value.split(",").map((h) => h.trim()).filter(Boolean);
  if (
    hosts.length === 0 || hosts.some((h) => !/^[a-z0-9.-]+(:\d+)?$/i.test(h))
  ) {
    throw new ConfigError(
      "Invalid flag --wikis: expected comma-separated host names such as www.wikidata.org",
    );
  }
  return hosts;
}

/** True when the arguments ask for help (`--help` or `-h`, anywhere). */
export function helpRequested(args: readonly string[]): boolean {
  return args.some((a) => a === "--help" || a === "-h");
}

/** Prints the command's usage (flags and main variables) to stdout; returns the exit code 0. */
export function printUsage(
  command: CommandName,
  write: (text: string) => void = (text) =>
    Deno.stdout.writeSync(new TextEncoder().encode(text)),
): 0 {
  write(usageText(command));
  return 0;
}

/** Loads config and flags, or logs the problem and returns the exit code 2. */
export function boot(
  service: string,
  args: string[],
  allowed: (keyof Flags)[],
  env?: Record<string, string | undefined>,
):
  | { config: Config; flags: Flags; log: Logger }
  | { exitCode: 2 } {
  try {
    const config = loadConfig(env);
    const flags = parseFlags(args, allowed);
    return {
      config,
      flags,
      log: createLogger({
        service,
        level: config.LOG_LEVEL,
        format: config.LOG_FORMAT,
      }),
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    createLogger({ service, format: "auto" }).error(err.message, {
      error: "ConfigError",
    });
    return { exitCode: 2 };
  }
}
