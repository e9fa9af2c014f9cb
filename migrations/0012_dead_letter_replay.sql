-- migrate: no-transaction
-- `deno task dlq:replay` marks each dead letter it put back into the tables (null: not replayed),
-- in the same transaction as the rows' write. The pending ones are found by a small partial index,
-- built without blocking the consumer's dead-letter inserts.
alter table dead_letters add column if not exists replayed_at timestamptz;
create index concurrently if not exists dead_letters_pending_idx
  on dead_letters (id) where replayed_at is null;
