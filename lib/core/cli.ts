/** @module Shared entrypoint plumbing: flags, `--help`, and config errors (exit 2). */
import { parseArgs } from "node:util";
import { type Config, loadConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
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
}

/** Parses flags; throws ConfigError naming the bad flag. */
export function parseFlags(args: string[], allowed: (keyof Flags)[]): Flags {
  const options = {
    since: { type: "string" },
    until: { type: "string" },
    "idle-exit": { type: "string" },
    wikis: { type: "string" },
    repair: { type: "boolean" },
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
    const key = name === "idle-exit" ? "idleExitMs" : name;
    if (!allow.has(key)) {
      throw new ConfigError(`Invalid flags: --${name} is not accepted here`);
    }
    if (key === "since" || key === "until") {
      if (
        typeof value !== "string" || Number.isNaN(Date.parse(value)) ||
        !/^\d{4}-\d{2}-\d{2}/.test(value)
      ) {
        throw new ConfigError(
          `Invalid flag --${name}: expected an ISO-8601 time such as 2024-04-26T00:00:00Z`,
        );
      }
      flags[key] = new Date(value).toISOString();
    } else if (key === "wikis") {
      flags.wikis = parseWikis(String(value));
    } else if (key === "repair") {
      flags.repair = value === true;
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
  if (flags.since && flags.until && flags.since > flags.until) {
    throw new ConfigError("Invalid flags: --since is after --until");
  }
  return flags;
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
