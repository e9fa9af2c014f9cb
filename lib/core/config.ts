/** @module Configuration: the environment, parsed once (lib/schemas/config.ts) into a readonly object. */
import { type Config, CONFIG_KEYS, parseConfig } from "../schemas/config.ts";
import { ConfigError } from "./errors.ts";

export type { Config };

/**
 * The variables the schema knows, read one by one: the tasks grant `--allow-env` to these names
 * only, so the whole environment (Deno.env.toObject) is out of reach.
 */
export function configEnv(): Record<string, string | undefined> {
  return Object.fromEntries(CONFIG_KEYS.map((k) => [k, Deno.env.get(k)]));
}

/** Parses the environment once; throws ConfigError naming each bad variable. */
export function loadConfig(
  env: Record<string, string | undefined> = configEnv(),
): Config {
  const picked: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const v = env[key];
    if (v !== undefined && v !== "") picked[key] = v;
  }
  const config = parseConfig(picked);
  if (config.SOURCE === "api" && config.WIKIS.includes("*")) {
    throw new ConfigError(
      "Invalid configuration: WIKIS\n✖ `*` (every wiki) needs SOURCE=eventstreams; the API is polled per wiki",
    );
  }
  checkKafkaSecurity(config);
  return Object.freeze(config);
}

/** Reads the PEM certificates of a CA bundle file; throws ConfigError naming `name`. */
export function readCaFile(path: string, name: string): string {
  let text;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `Invalid configuration: ${name}\n✖ Cannot read the CA file: ${
        (err as Error).name
      }`,
      { cause: err },
    );
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(
      `Invalid configuration: ${name}\n✖ The CA file holds no PEM certificate`,
    );
  }
  return text;
}

function checkKafkaSecurity(c: Config): void {
  const fail = (name: string, why: string) => {
    throw new ConfigError(`Invalid configuration: ${name}\n✖ ${why}`);
  };
  if (c.KAFKA_SSL_CA_FILE !== undefined) {
    if (!c.KAFKA_SSL) fail("KAFKA_SSL_CA_FILE", "Needs KAFKA_SSL=true");
    readCaFile(c.KAFKA_SSL_CA_FILE, "KAFKA_SSL_CA_FILE");
  }
  const sasl = c.KAFKA_SASL_MECHANISM !== "none";
  for (const name of ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"] as const) {
    if (sasl && c[name] === undefined) {
      fail(
        name,
        `Required with KAFKA_SASL_MECHANISM=${c.KAFKA_SASL_MECHANISM}`,
      );
    }
    if (!sasl && c[name] !== undefined) {
      fail(name, "Set, but KAFKA_SASL_MECHANISM is none");
    }
  }
}

/** Redacts the password (and query) of a connection URL for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    u.search = "";
    return u.toString();
  } catch {
    return "<unparseable url>";
  }
}
