/** @module The original design's Spark Structured Streaming job (foreachBatch + JDBC) as a peer process. */

/** Where the job runs and what it writes. */
export interface SparkOptions {
  brokers: string;
  topic: string;
  /** A PostgreSQL URL (postgres://user@host:port/db) of the database to write. */
  databaseUrl: string;
  /** `append` (plain INSERT) or `upsert` (staging table + INSERT ... ON CONFLICT). */
  mode: "append" | "upsert";
  /** Records per micro-batch; without it the first micro-batch takes the whole topic. */
  maxOffsetsPerTrigger: number;
  /** Folder for the checkpoint and the log. */
  dir: string;
  /** .cache/peers, as bench/peers/install.sh filled it. */
  peers: string;
}

import { spawnLogged } from "./_run.ts";

/** Spawns `spark-submit` (pyspark from the venv, the Kafka and JDBC jars passed as --jars). */
export function spawnSpark(o: SparkOptions): Deno.ChildProcess {
  const u = new URL(o.databaseUrl);
  Deno.mkdirSync(o.dir, { recursive: true });
  const jars = [...Deno.readDirSync(`${o.peers}/spark/jars`)]
    .filter((e) => e.name.endsWith(".jar"))
    .map((e) => `${o.peers}/spark/jars/${e.name}`);
  const job = new URL("./spark_job.py", import.meta.url).pathname;
  return spawnLogged(`${o.peers}/venv/bin/spark-submit`, {
    args: [
      "--master",
      "local[2]",
      "--driver-memory",
      "2g",
      "--jars",
      jars.join(","),
      job,
      o.brokers,
      o.topic,
      `jdbc:postgresql://${u.host}${u.pathname}?stringtype=unspecified`,
      decodeURIComponent(u.username),
      o.mode,
      String(o.maxOffsetsPerTrigger),
      `${o.dir}/checkpoint`,
    ],
    env: {
      PYSPARK_PYTHON: `${o.peers}/venv/bin/python`,
      SPARK_LOCAL_IP: "127.0.0.1",
      SPARK_LOCAL_DIRS: `${o.dir}/tmp`,
      // The password in the environment, not on the command line (ps would show it).
      PEER_PG_PASSWORD: decodeURIComponent(u.password),
    },
    log: `${o.dir}/spark.log`,
  });
}
