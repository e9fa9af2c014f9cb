/**
 * @module The Deno permissions each task needs, derived from the configuration: `--allow-net` to
 * the configured brokers, database, wikis and HTTP address, `--allow-read` to the project and the
 * configured CA files. `deno task` runs scripts/permissions.ts to print them before the real run.
 */
import { CONFIG_KEYS, parseConfig } from "../schemas/config.ts";
import type { Config } from "./config.ts";

/** The tasks whose permissions depend on the configuration. */
export type Task =
  | "produce"
  | "consume"
  | "migrate"
  | "retention"
  | "audit"
  | "dlq:replay"
  | "start";

/** What a task talks to. */
const NEEDS: Record<
  Task,
  { kafka: boolean; db: boolean; wikis: boolean; http: boolean }
> = {
  produce: { kafka: true, db: false, wikis: true, http: true },
  consume: { kafka: true, db: true, wikis: false, http: true },
  migrate: { kafka: false, db: true, wikis: false, http: false },
  retention: { kafka: false, db: true, wikis: false, http: false },
  // Reads the table and the Action API; --repair republishes to Kafka.
  audit: { kafka: true, db: true, wikis: true, http: false },
  // Reads dead_letters and writes through the sink; publishes nothing to Kafka.
  "dlq:replay": { kafka: false, db: true, wikis: false, http: false },
  start: { kafka: true, db: true, wikis: true, http: true },
};

/** Variables read besides the config schema's: the local services' ports (`start` only). */
export const LOCAL_SERVICE_KEYS = [
  "WIKISTREAM_KAFKA_PORT",
  "WIKISTREAM_PG_PORT",
];

/**
 * The `--allow-net` and `--allow-read` flags for `task` under `env`. A configuration that does
 * not parse yields no flags: the task then starts without them and reports the ConfigError itself.
 */
export function permissionFlags(
  task: Task,
  env: Record<string, string | undefined>,
): string[] {
  const picked: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const v = env[key];
    if (v !== undefined && v !== "") picked[key] = v;
  }
  let config: Config;
  try {
    config = parseConfig(withLocalServices(task, picked, env));
  } catch {
    return [];
  }
  const net = netHosts(task, config);
  return [
    `--allow-net=${net.join(",")}`,
    `--allow-read=${readPaths(config).join(",")}`,
  ];
}

/** `start` falls back to the local services (scripts/services.sh) when they are not given. */
function withLocalServices(
  task: Task,
  picked: Record<string, string>,
  env: Record<string, string | undefined>,
): Record<string, string> {
  if (task !== "start") return picked;
  const kafka = env.WIKISTREAM_KAFKA_PORT || "19092";
  const pg = env.WIKISTREAM_PG_PORT || "15432";
  return {
    KAFKA_BROKERS: `127.0.0.1:${kafka}`,
    DATABASE_URL: `postgres://wikistream@127.0.0.1:${pg}/wiki_data`,
    ...picked,
  };
}

function netHosts(task: Task, c: Config): string[] {
  const need = NEEDS[task];
  const hosts = new Set<string>();
  if (need.kafka) {
    for (const b of c.KAFKA_BROKERS) hosts.add(withPort(b, 9092));
  }
  if (need.db) hosts.add(hostPort(c.DATABASE_URL, 5432));
  if (need.wikis) {
    if (c.SOURCE === "eventstreams") {
      hosts.add(hostPort(c.EVENTSTREAMS_URL, 443));
    } else {
      // `*` needs SOURCE=eventstreams: loadConfig rejects it in the task itself.
      for (const w of c.WIKIS.filter((w) => w !== "*")) {
        hosts.add(hostPort(c.MEDIAWIKI_API_URL.replace("{host}", w), 443));
      }
    }
  }
  if (need.http) {
    // Port 0 picks a free port: only the address can be named then.
    const ports = task === "produce" ? [c.PRODUCER_HTTP_PORT] : [c.HTTP_PORT];
    for (const p of ports) {
      hosts.add(p === 0 ? c.HTTP_HOST : withPort(c.HTTP_HOST, p));
    }
  }
  for (const h of c.ALLOW_NET_EXTRA?.split(",") ?? []) hosts.add(h);
  // Anything Deno would refuse as a flag is left out: the task then reports it itself.
  return [...hosts].filter((h) => /^[A-Za-z0-9.*:\[\]/-]+$/.test(h));
}

/** The project (cwd) and the configured CA files, which may live elsewhere. */
function readPaths(c: Config): string[] {
  const paths = ["."];
  if (c.KAFKA_SSL_CA_FILE) paths.push(c.KAFKA_SSL_CA_FILE);
  try {
    const ca = new URL(c.DATABASE_URL).searchParams.get("sslrootcert");
    if (ca && ca !== "system") paths.push(ca);
  } catch {
    // multi-host URLs: no CA file named
  }
  return paths;
}

function withPort(host: string, port: number): string {
  return /:\d+$/.test(host) && !/^\[?[0-9a-f:]+\]?$/i.test(host)
    ? host
    : `${host}:${port}`;
}

function hostPort(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || defaultPort}`;
  } catch {
    // A multi-host postgres URL (h1:p1,h2:p2): each host as written.
    const m = /^[a-z]+:\/\/(?:[^@/]*@)?([^/?]+)/i.exec(url);
    return m ? m[1]! : url;
  }
}
