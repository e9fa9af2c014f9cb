-- migrate: no-transaction
-- One wiki's changes in time order (research queries such as "one wiki's last day"), built
-- without blocking writes: PostgreSQL cannot `create index concurrently` on a partitioned table,
-- so the parent's index is declared on the parent only (instant, invalid until complete), each
-- partition's index is built concurrently, then attached; the last attach makes it valid.
-- Partitions created later get the index when they are attached (wikistream_ensure_month).
create index if not exists wiki_recent_changes_wiki_time_idx
  on only wiki_recent_changes (wiki, event_time);
create index concurrently if not exists {partition of wiki_recent_changes}_wiki_time_idx
  on {partition of wiki_recent_changes} (wiki, event_time);
alter index wiki_recent_changes_wiki_time_idx
  attach partition {partition of wiki_recent_changes}_wiki_time_idx;
