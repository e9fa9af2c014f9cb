/** @module The configuration schema: every environment variable, its default and its check (zod). */
import { z } from "zod";
import { ConfigError } from "../core/errors.ts";

const hostList = z.string().transform((s, ctx) => {
  const hosts = s.split(",").map((h) => h.trim()).filter(Boolean);
  if (hosts.length === 0) {
    ctx.addIssue({ code: "custom", message: "Expected at least one entry" });
  }
  for (const h of hosts) {
    if (h !== "*" && !/^[a-z0-9.-]+(:\d+)?$/i.test(h)) {
      ctx.addIssue({ code: "custom", message: `Invalid host name "${h}"` });
    }
  }
  return hosts;
});

const int = (min: number, max: number) =>
  z.coerce.number().int().min(min).max(max);

/** Every environment variable the scripts read, with its default and meaning (README table). */
export const ConfigSchema = z.object({
  KAFKA_BROKERS: hostList.default(["127.0.0.1:19092"])
    .describe("Comma-separated Kafka/Redpanda bootstrap brokers"),
  KAFKA_TOPIC: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/).default(
    "wiki.recentchanges",
  )
    .describe("Topic the changes are published to"),
  KAFKA_PARTITIONS: int(1, 1000).default(3)
    .describe("Partitions when the topic is created by wikistream"),
  KAFKA_CLIENT_ID: z.string().min(1).default("wikistream").describe(
    "Kafka client id",
  ),
  KAFKA_GROUP_ID: z.string().min(1).default("wikistream-pg")
    .describe("Consumer group of the PostgreSQL sink"),
  KAFKA_TRANSACTIONAL_ID: z.string().min(1).default("wikistream-producer")
    .describe("Transactional id of the producer (one per running producer)"),
  KAFKA_SSL: z.stringbool({ truthy: ["true"], falsy: ["false"] }).default(
    false,
  )
    .describe("Connect to the brokers over TLS (`true` or `false`)"),
  KAFKA_SSL_CA_FILE: z.string().min(1).optional()
    .describe(
      "PEM CA bundle that signs the brokers' certificates (unset: the system CAs); needs KAFKA_SSL=true",
    ),
  KAFKA_SASL_MECHANISM: z.enum([
    "none",
    "plain",
    "scram-sha-256",
    "scram-sha-512",
  ])
    .default("none")
    .describe(
      "SASL authentication: `none`, `plain`, `scram-sha-256` or `scram-sha-512`",
    ),
  KAFKA_SASL_USERNAME: z.string().min(1).optional()
    .describe("SASL user name (required with a SASL mechanism)"),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional()
    .describe("SASL password (required with a SASL mechanism; never logged)"),
  DATABASE_URL: z.string().regex(
    /^postgres(ql)?:\/\//,
    "Expected a postgres:// URL",
  )
    .default("postgres://wikistream@127.0.0.1:15432/wiki_data")
    .describe("PostgreSQL connection URL"),
  WIKIS: hostList.default(["en.wikipedia.org"])
    .describe(
      "Comma-separated wiki host names to follow (`*`: every wiki, EventStreams only)",
    ),
  SOURCE: z.enum(["api", "eventstreams"]).default("api")
    .describe(
      "`api` polls the Action API per wiki; `eventstreams` follows the SSE stream",
    ),
  EVENTSTREAMS_URL: z.url().default(
    "https://stream.wikimedia.org/v2/stream/recentchange",
  )
    .describe("EventStreams recentchange URL (SOURCE=eventstreams)"),
  MEDIAWIKI_API_URL: z.string().refine(
    (s) => s.includes("{host}") && URL.canParse(s.replace("{host}", "h")),
    "Expected a URL template containing {host}",
  )
    .default("https://{host}/w/api.php")
    .describe(
      "Action API URL template; {host} is replaced by each wiki's host",
    ),
  POLL_INTERVAL_MS: int(100, 3_600_000).default(5000)
    .describe("Pause between polls of one wiki once caught up"),
  POLL_OVERLAP_SECONDS: int(0, 86_400).default(120)
    .describe("How far behind the newest seen timestamp each poll re-reads"),
  RECONCILE_WINDOW_SECONDS: int(0, 2_592_000).default(21_600)
    .describe(
      "How far back (on the wiki's clock) each reconcile pass re-reads, for rows that appear late; 0 turns it off",
    ),
  RECONCILE_INTERVAL_SECONDS: int(1, 86_400).default(600)
    .describe("Wiki time between reconcile passes of one wiki"),
  HTTP_TIMEOUT_MS: int(100, 600_000).default(30_000)
    .describe("Timeout of one Wikimedia API request"),
  USER_AGENT: z.string().min(10).default(
    "wikistream/0.1 (https://github.com/wikistream/wikistream; set USER_AGENT to your contact) deno",
  ).describe("User-Agent sent to Wikimedia (name, version, contact)"),
  HTTP_HOST: z.string().min(1).default("127.0.0.1").describe(
    "Address the HTTP endpoints bind",
  ),
  HTTP_AUTH_TOKEN: z.string().regex(
    /^[A-Za-z0-9._~+/-]{16,}=*$/,
    "Expected at least 16 characters of A-Z a-z 0-9 . _ ~ + / -",
  ).optional()
    .describe(
      "When set, every HTTP endpoint but /healthz and /readyz needs `Authorization: Bearer <token>` (never logged)",
    ),
  HTTP_PORT: int(0, 65_535).default(8080)
    .describe(
      "Port of the consumer's (and `start`'s) HTTP endpoints; 0 picks a free port",
    ),
  PRODUCER_HTTP_PORT: int(0, 65_535).default(8081)
    .describe("Port of the producer's HTTP endpoints when run alone"),
  HEALTH_STALL_SECONDS: int(1, 86_400).default(120)
    .describe(
      "/healthz turns unhealthy after this long without a written batch while lag is pending",
    ),
  REDACT_DELETED_PAGES: z.stringbool({ truthy: ["true"], falsy: ["false"] })
    .default(false)
    .describe(
      "Also remove the comment, user and sha1 of a deleted page's rows (`true` or `false`)",
    ),
  RETENTION_DAYS: int(1, 365_000).optional()
    .describe(
      "Drop whole monthly partitions of wiki_recent_changes whose rows are all older than this many days (unset: keep everything)",
    ),
  ALLOW_NET_EXTRA: z.string().regex(
    /^[A-Za-z0-9.*:\[\]/-]+(,[A-Za-z0-9.*:\[\]/-]+)*$/,
    "Expected comma-separated hosts in --allow-net syntax",
  ).optional()
    .describe(
      "More hosts the tasks may reach, in Deno's `--allow-net` syntax (e.g. `*.brokers.example:9092` when Kafka advertises other names than KAFKA_BROKERS)",
    ),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info")
    .describe("Minimum log level"),
  LOG_FORMAT: z.enum(["auto", "pretty", "json"]).default("auto")
    .describe(
      "`auto`: readable lines on a terminal, JSON lines otherwise; `pretty` or `json` to force one",
    ),
});

/** The resolved configuration. */
export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** The variable names the schema knows (for task permissions and compose checks). */
export const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as (keyof Config)[];

/** One variable as documented: name, default (as text, `unset` when none) and meaning. */
export interface ConfigDoc {
  name: keyof Config;
  default: string;
  description: string;
}

/** The documentation of every variable, read from the schema (for `--help` and README checks). */
export function describeConfig(): ConfigDoc[] {
  return CONFIG_KEYS.map((name) => {
    const field = ConfigSchema.shape[name];
    const parsed = field.safeParse(undefined);
    const value = parsed.success ? parsed.data : undefined;
    return {
      name,
      default: value === undefined
        ? "unset"
        : Array.isArray(value)
        ? value.join(",")
        : String(value),
      description: field.description ?? "",
    };
  });
}

/** Validates the picked variables; throws ConfigError naming each bad variable. */
export function parseConfig(picked: Record<string, string>): Config {
  const result = ConfigSchema.safeParse(picked);
  if (!result.success) {
    const names = [
      ...new Set(result.error.issues.map((i) => String(i.path[0]))),
    ];
    throw new ConfigError(
      `Invalid configuration: ${names.join(", ")}\n${
        z.prettifyError(result.error)
      }`,
    );
  }
  return result.data;
}
