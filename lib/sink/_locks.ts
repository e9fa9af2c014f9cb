/**
 * @module The write path's advisory lock keys, as SQL arguments of `pg_advisory_xact_lock*`.
 *
 * Taken in this order, never the reverse (so no deadlock): the merge lock (shared by a direct
 * COPY, exclusive by a staged merge; lib/sink/sink.ts), the retention lock (shared by every
 * write, exclusive by the retention job; lib/sink/partitions.ts), the redaction lock (exclusive;
 * lib/sink/redactions.ts). The merge and redaction locks are keyed by the table they guard (its
 * oid), not by a name: sessions whose search_paths differ but resolve the same tables
 * (current_schema() can differ) still take the same lock.
 */

export const MERGE_LOCK =
  "hashtext('wikistream.merge'), 'wiki_recent_changes'::regclass::oid::int";
export const RETENTION_LOCK = "hashtext('wikistream.retention')";
export const REDACTION_LOCK =
  "hashtext('wikistream.redactions'), 'wiki_recent_changes'::regclass::oid::int";
