"""The original design's sink as a peer of the consumer, for `deno task bench:peers`.

A Spark Structured Streaming job: reads the envelope topic from Kafka, parses the JSON with a
schema, maps the row's fields to wiki_recent_changes' columns, and writes each micro-batch over
JDBC in foreachBatch. Mode `append` is a plain INSERT (a replay fails on the key); `upsert` writes
the micro-batch into a staging table and merges it with INSERT ... ON CONFLICT DO NOTHING.

    spark_job.py BROKERS TOPIC JDBC_URL USER MODE MAX_OFFSETS_PER_TRIGGER CHECKPOINT_DIR
"""
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

brokers, topic, jdbc_url, user, mode, max_offsets, checkpoint = sys.argv[1:8]
password = os.environ.get("PEER_PG_PASSWORD", "")

spark = (
    SparkSession.builder.appName("wikistream-peer")
    .master("local[2]")
    .config("spark.sql.shuffle.partitions", "2")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("WARN")

S, L, I = T.StringType(), T.LongType(), T.IntegerType()
# Flags are booleans (formatversion 2) or "" when set (formatversion 1): read them as text.
FLAGS = ["anon", "temp", "bot", "minor", "new", "userhidden", "commenthidden", "actionhidden", "sha1hidden"]
row_schema = T.StructType(
    [T.StructField(n, t) for n, t in [
        ("type", S), ("rcid", L), ("timestamp", S), ("ns", I), ("title", S), ("pageid", L),
        ("revid", L), ("old_revid", L), ("user", S), ("userid", L), ("oldlen", I),
        ("newlen", I), ("comment", S), ("sha1", S), ("logid", L), ("logtype", S),
        ("logaction", S),
    ]]
    + [T.StructField(f, S) for f in FLAGS]
    + [T.StructField("tags", T.ArrayType(S))]
)
envelope = T.StructType([
    T.StructField("v", I), T.StructField("source", S), T.StructField("wiki", S),
    T.StructField("server_name", S), T.StructField("fetched_at", S),
    T.StructField("row", row_schema),
])


def flag(name):
    c = F.col("e.row." + name)
    return F.coalesce(c.isNotNull() & (c != F.lit("false")), F.lit(False))


def nonzero(name):
    c = F.col("e.row." + name)
    return F.when(c != 0, c)


is_new = (F.col("e.row.type") == "new") | flag("new")
is_log = F.col("e.row.type") == "log"
hidden = flag("userhidden")

frames = (
    spark.readStream.format("kafka")
    .option("kafka.bootstrap.servers", brokers)
    .option("subscribe", topic)
    .option("startingOffsets", "earliest")
    .option("maxOffsetsPerTrigger", max_offsets)
    .option("kafka.isolation.level", "read_committed")
    .load()
)
parsed = frames.select(
    F.col("partition").alias("kafka_partition"),
    F.col("offset").alias("kafka_offset"),
    F.col("value").cast("string").alias("json"),
).select("*", F.from_json("json", envelope).alias("e"))
rows = parsed.select(
    F.col("e.wiki").alias("wiki"),
    F.col("e.row.rcid").alias("rcid"),
    F.col("e.server_name").alias("server_name"),
    F.col("e.row.type").alias("change_type"),
    F.col("e.row.ns").alias("namespace"),
    F.col("e.row.title").alias("title"),
    nonzero("pageid").alias("page_id"),
    nonzero("revid").alias("rev_id"),
    F.when(~is_new, nonzero("old_revid")).alias("old_rev_id"),
    F.when(~hidden, F.col("e.row.user")).alias("user_name"),
    F.when(~hidden, nonzero("userid")).alias("user_id"),
    flag("anon").alias("is_anon"),
    flag("temp").alias("is_temp"),
    flag("bot").alias("is_bot"),
    flag("minor").alias("is_minor"),
    is_new.alias("is_new"),
    F.when(~is_new & ~is_log, F.col("e.row.oldlen")).alias("old_len"),
    F.when(~is_log, F.col("e.row.newlen")).alias("new_len"),
    F.col("e.row.timestamp").cast("timestamp").alias("event_time"),
    F.when(~flag("commenthidden"), F.col("e.row.comment")).alias("comment"),
    F.coalesce(F.col("e.row.tags"), F.array().cast(T.ArrayType(S))).alias("tags"),
    F.when(~flag("sha1hidden"), F.col("e.row.sha1")).alias("sha1"),
    F.when(is_log, nonzero("logid")).alias("log_id"),
    F.when(is_log, F.col("e.row.logtype")).alias("log_type"),
    F.when(is_log, F.col("e.row.logaction")).alias("log_action"),
    F.when(is_log, F.get_json_object("json", "$.row.logparams")).alias("log_params"),
    hidden.alias("user_hidden"),
    flag("commenthidden").alias("comment_hidden"),
    flag("actionhidden").alias("action_hidden"),
    F.get_json_object("json", "$.row").alias("raw"),
    "kafka_partition",
    "kafka_offset",
)
props = {"user": user, "password": password, "driver": "org.postgresql.Driver", "batchsize": "1000"}
COLUMNS = ", ".join(rows.columns)


def write(batch, _batch_id):
    if mode == "append":
        batch.write.jdbc(jdbc_url, "wiki_recent_changes", mode="append", properties=props)
        return
    batch.write.jdbc(jdbc_url, "peer_stage", mode="overwrite", properties={**props, "truncate": "true"})
    jvm = spark.sparkContext._jvm
    conn = jvm.java.sql.DriverManager.getConnection(jdbc_url, user, password)
    try:
        conn.createStatement().executeUpdate(
            f"insert into wiki_recent_changes ({COLUMNS}) select {COLUMNS} from peer_stage "
            "on conflict (wiki, rcid, event_time) do nothing"
        )
    finally:
        conn.close()


rows.writeStream.foreachBatch(write).option("checkpointLocation", checkpoint).start().awaitTermination()
