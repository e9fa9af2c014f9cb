/**
 * @module The Debezium JDBC sink on Kafka Connect standalone, as a peer of the consumer: its
 * records (a flattened row with a JSON schema, as Connect's JdbcSink needs) and its process.
 */
import { decodeValue } from "../../lib/sink/decode.ts";
import { COLUMNS } from "../../lib/sink/copy.ts";
import type { ReplayedRecord } from "../../tests/integration/_consumer_fixture.ts";
import { spawnLogged } from "./_run.ts";

/** Where the connector runs and what it writes. */
export interface DebeziumOptions {
  brokers: string;
  topic: string;
  /** A PostgreSQL URL (postgres://user@host:port/db) of the database to write. */
  databaseUrl: string;
  /** The connector's `batch.size` (and the task consumer's `max.poll.records`); Debezium's default is 500. */
  batchSize: number;
  /** Folder for the worker's files (offsets, properties, log). */
  dir: string;
  /** A free port for Connect's REST listener. */
  restPort: number;
  /** .cache/peers, as bench/peers/install.sh filled it. */
  peers: string;
}

const INT64 = new Set([
  "rcid",
  "page_id",
  "rev_id",
  "old_rev_id",
  "user_id",
  "log_id",
]);
const INT32 = new Set(["namespace", "old_len", "new_len"]);
const BOOLS = new Set([
  "is_anon",
  "is_temp",
  "is_bot",
  "is_minor",
  "is_new",
  "user_hidden",
  "comment_hidden",
  "action_hidden",
  "sha1_hidden",
  "suppressed",
]);
const REQUIRED = new Set([
  "wiki",
  "rcid",
  "server_name",
  "change_type",
  "event_time",
  "raw",
  "tags",
  ...BOOLS,
]);
/** kafka_partition and kafka_offset are filled by Connect's InsertField transform. */
const ROW_COLUMNS = COLUMNS.filter((c) =>
  c !== "kafka_partition" && c !== "kafka_offset"
);

/** The Connect JSON schema of the flattened row (sent with every record: schemas.enable=true). */
const SCHEMA = {
  type: "struct",
  name: "wikistream.row",
  optional: false,
  fields: ROW_COLUMNS.map((c) => ({
    field: c,
    type: INT64.has(c)
      ? "int64"
      : INT32.has(c)
      ? "int32"
      : BOOLS.has(c)
      ? "boolean"
      : "string",
    optional: !REQUIRED.has(c),
  })),
};

const enc = new TextEncoder();

/**
 * A replayed record as the Debezium topic holds it: our decoder's row (so this peer reads
 * pre-decoded rows and does no MediaWiki parsing), every column flattened; text[], jsonb and
 * timestamptz go as text that PostgreSQL casts (the JDBC URL sets stringtype=unspecified).
 */
export function connectValue(r: ReplayedRecord): string {
  const row = decodeValue(enc.encode(r.value)) as unknown as Record<
    string,
    unknown
  >;
  const payload: Record<string, unknown> = {};
  for (const c of ROW_COLUMNS) {
    const v = row[c];
    if (c === "rcid") payload[c] = Number(v);
    else if (INT64.has(c) && v !== null) payload[c] = Number(v);
    else if (c === "raw" || c === "log_params") {
      payload[c] = v === null ? null : JSON.stringify(v);
    } else if (c === "tags") payload[c] = pgArray(v as string[]);
    else payload[c] = v;
  }
  return JSON.stringify({ schema: SCHEMA, payload });
}

/** Writes the worker and connector properties and spawns Connect standalone. */
export function spawnDebezium(o: DebeziumOptions): Deno.ChildProcess {
  const u = new URL(o.databaseUrl);
  Deno.mkdirSync(o.dir, { recursive: true });
  const worker = `${o.dir}/worker.properties`;
  const connector = `${o.dir}/connector.properties`;
  Deno.writeTextFileSync(
    worker,
    props({
      "bootstrap.servers": o.brokers,
      "key.converter": "org.apache.kafka.connect.storage.StringConverter",
      "value.converter": "org.apache.kafka.connect.json.JsonConverter",
      "value.converter.schemas.enable": "true",
      "offset.storage.file.filename": `${o.dir}/offsets`,
      "plugin.path": `${o.peers}/connect/plugins`,
      "listeners": `http://127.0.0.1:${o.restPort}`,
      "consumer.max.poll.records": String(o.batchSize),
      "consumer.isolation.level": "read_committed",
      "consumer.auto.offset.reset": "earliest",
    }),
  );
  Deno.writeTextFileSync(
    connector,
    props({
      "name": `wikistream-peer-${crypto.randomUUID().slice(0, 8)}`,
      "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
      "tasks.max": "3",
      "topics": o.topic,
      "connection.url":
        `jdbc:postgresql://${u.host}${u.pathname}?stringtype=unspecified`,
      "connection.username": decodeURIComponent(u.username),
      "connection.password": decodeURIComponent(u.password),
      "insert.mode": "upsert",
      "primary.key.mode": "record_value",
      // The table's key since it is partitioned by month (migration 0010).
      "primary.key.fields": "wiki,rcid,event_time",
      "collection.name.format": "wiki_recent_changes",
      "schema.evolution": "none",
      "batch.size": String(o.batchSize),
      "transforms": "where",
      "transforms.where.type":
        "org.apache.kafka.connect.transforms.InsertField$Value",
      "transforms.where.partition.field": "kafka_partition",
      "transforms.where.offset.field": "kafka_offset",
    }),
  );
  const log4j = `${o.dir}/log4j.properties`;
  Deno.writeTextFileSync(
    log4j,
    [
      "log4j.rootLogger=WARN, file",
      "log4j.appender.file=org.apache.log4j.FileAppender",
      `log4j.appender.file.File=${o.dir}/connect.log`,
      "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
      "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
    ].join("\n") + "\n",
  );
  return spawnLogged("java", {
    args: [
      "-Xms256M",
      "-Xmx2G",
      "-XX:+UseG1GC",
      "-Djava.awt.headless=true",
      `-Dlog4j.configuration=file:${log4j}`,
      "-cp",
      `${o.peers}/connect/libs/*`,
      "org.apache.kafka.connect.cli.ConnectStandalone",
      worker,
      connector,
    ],
    log: `${o.dir}/stdout.log`,
  });
}

function pgArray(xs: string[]): string {
  return `{${xs.map((s) => `"${s.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}

function props(p: Record<string, string>): string {
  return Object.entries(p).map(([k, v]) => `${k}=${v.replace(/\\/g, "\\\\")}`)
    .join("\n") + "\n";
}
