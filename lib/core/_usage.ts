/** @module The `--help` text of every command: usage, flags and the main environment variables. */
import { type ConfigDoc, describeConfig } from "../schemas/config.ts";
import { DEAD_LETTER_REASONS } from "./errors.ts";

/** The commands that answer `--help`. */
export type CommandName =
  | "produce"
  | "consume"
  | "start"
  | "migrate"
  | "audit"
  | "retention"
  | "dlq:replay";

interface CommandSpec {
  summary: string;
  flags: [string, string][];
  env: ConfigDoc["name"][];
}

const HELP: [string, string] = ["-h, --help", "Print this help and exit"];
const SINCE: [string, string] = [
  "--since <ISO-8601>",
  "Start from that time instead of now (a later stored checkpoint wins)",
];
const UNTIL: [string, string] = [
  "--until <ISO-8601>",
  "Publish every change up to then, then stop the producer",
];
const KAFKA = ["KAFKA_BROKERS", "KAFKA_TOPIC"] as const;
const LOGS = ["LOG_LEVEL", "LOG_FORMAT"] as const;

const COMMANDS: Record<CommandName, CommandSpec> = {
  produce: {
    summary:
      "Polls the recent changes of the configured wikis (MediaWiki Action API, or EventStreams\nwith SOURCE=eventstreams) and publishes them to Kafka, with a per-wiki cursor.",
    flags: [SINCE, UNTIL, HELP],
    env: [
      ...KAFKA,
      "WIKIS",
      "SOURCE",
      "MEDIAWIKI_API_URL",
      "POLL_INTERVAL_MS",
      "USER_AGENT",
      "PRODUCER_HTTP_PORT",
      ...LOGS,
    ],
  },
  consume: {
    summary:
      "Reads the Kafka topic in batches and writes the changes exactly once (in effect) into\nPostgreSQL; serves /healthz, /readyz, /lag, /metrics and the dashboard on HTTP_PORT.",
    flags: [[
      "--idle-exit <secs>",
      "Exit 0 once caught up and nothing new arrived for that long",
    ], HELP],
    env: [...KAFKA, "KAFKA_GROUP_ID", "DATABASE_URL", "HTTP_PORT", ...LOGS],
  },
  start: {
    summary:
      "Runs the whole pipeline in one process: starts the local Kafka and PostgreSQL unless\nKAFKA_BROKERS and DATABASE_URL are both set, migrates, then runs producer and consumer\nwith one HTTP server until Ctrl-C. Ctrl-C leaves the local Kafka and PostgreSQL running;\nstop them with `./wikistream services:stop`.",
    flags: [SINCE, UNTIL, HELP],
    env: [
      ...KAFKA,
      "DATABASE_URL",
      "WIKIS",
      "SOURCE",
      "MEDIAWIKI_API_URL",
      "USER_AGENT",
      "HTTP_PORT",
      ...LOGS,
    ],
  },
  audit: {
    summary:
      "Compares PostgreSQL with the Action API per wiki over a time range and lists what is\nmissing; exit 0 when nothing is, 1 when something is. --repair republishes the missing rows.",
    flags: [
      ["--since <ISO-8601>", "Start of the range (required)"],
      ["--until <ISO-8601>", "End of the range (required)"],
      ["--wikis <a,b>", "Only these wiki host names (default: WIKIS)"],
      ["--repair", "Republish the missing rows to Kafka"],
      HELP,
    ],
    env: [...KAFKA, "DATABASE_URL", "WIKIS", "MEDIAWIKI_API_URL", ...LOGS],
  },
  retention: {
    summary:
      "One partition housekeeping pass on DATABASE_URL: creates the coming months' partitions and\ndrops those whose rows are all older than RETENTION_DAYS (unset: keeps everything).",
    flags: [HELP],
    env: ["DATABASE_URL", "RETENTION_DAYS", ...LOGS],
  },
  "dlq:replay": {
    summary:
      "Puts the dead letters of the dead_letters table back through the sink after a fix (decoded\n" +
      "as the consumer decodes, deduplicated, rollups kept exact) and marks the ones written or\n" +
      "already present replayed, in the same transaction; a replayed letter is not selected again.\n" +
      "Publishes nothing to Kafka. Prints one JSON summary line. Exit 0 when every selected dead\n" +
      "letter was replayed (or --dry-run), 1 when some still fail (or on failure), 2 on bad flags.",
    flags: [
      [
        "--reason <r,...>",
        `Only these reasons (repeatable): ${DEAD_LETTER_REASONS.join(", ")}`,
      ],
      ["--since <ISO-8601>", "Only dead letters received at or after then"],
      ["--until <ISO-8601>", "Only dead letters received before then"],
      ["--limit <n>", "At most n dead letters (the oldest first)"],
      ["--dry-run", "Count the selection by reason; write nothing"],
      [
        "--include-replayed",
        "Also those already replayed (each counts as a duplicate)",
      ],
      HELP,
    ],
    env: ["DATABASE_URL", ...LOGS],
  },
  migrate: {
    summary:
      "Applies the pending numbered SQL files of migrations/ to DATABASE_URL, each in its own\ntransaction.",
    flags: [HELP],
    env: ["DATABASE_URL", ...LOGS],
  },
};

/** The usage text of one command. */
export function usageText(command: CommandName): string {
  const spec = COMMANDS[command];
  const docs = new Map(describeConfig().map((d) => [d.name, d]));
  const flagWidth = Math.max(...spec.flags.map(([f]) => f.length));
  const lines = [
    `Usage: ./wikistream ${command} ${
      spec.flags.filter((f) => f !== HELP).map(([f]) => `[${f}]`).join(" ")
    }`.trimEnd(),
    `       (or deno task ${command} ...)`,
    "",
    spec.summary,
    "",
    "Flags:",
    ...spec.flags.map(([f, d]) => `  ${f.padEnd(flagWidth)}  ${d}`),
    "",
    "Main environment variables (all of them: README.md, Configuration):",
    ...spec.env.flatMap((name) => {
      const doc = docs.get(name)!;
      return [`  ${name}=${doc.default}`, `      ${plain(doc.description)}`];
    }),
    "",
  ];
  return lines.join("\n");
}

/** Markdown backticks read as noise in a terminal. */
function plain(text: string): string {
  return text.replaceAll("`", "");
}
