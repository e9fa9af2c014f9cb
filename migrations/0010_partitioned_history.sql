-- History at scale (docs/history.md): wiki_recent_changes becomes a table partitioned by month of
-- event_time, with a default partition so no row is ever refused for its date; hourly and daily
-- rollups per wiki and namespace; the retention horizon. Runs in one transaction: an existing
-- unpartitioned table (any columns earlier migrations added) is copied over and dropped, so a
-- failure leaves the old table untouched, and the row counts are checked before the old one goes.

-- The retention horizon: partitions below it were dropped; rows older are refused, not re-inserted.
create table if not exists wiki_history_state (
  id            boolean     primary key default true check (id),
  retained_from timestamptz not null default '-infinity'
);
insert into wiki_history_state default values on conflict do nothing;

-- Activity per wiki, namespace (-1: none) and hour / day (UTC), from newly inserted rows only.
create table if not exists wiki_activity_hour (
  wiki          text        not null,
  hour          timestamptz not null,
  namespace     integer     not null,
  changes       bigint      not null default 0,
  edits         bigint      not null default 0,
  new_pages     bigint      not null default 0,
  log_events    bigint      not null default 0,
  categorize    bigint      not null default 0,
  bot_changes   bigint      not null default 0,
  anon_changes  bigint      not null default 0,
  bytes_added   bigint      not null default 0,
  bytes_removed bigint      not null default 0,
  primary key (wiki, hour, namespace)
);
create index if not exists wiki_activity_hour_hour_idx on wiki_activity_hour (hour);

create table if not exists wiki_activity_day (
  wiki          text        not null,
  day           timestamptz not null,
  namespace     integer     not null,
  changes       bigint      not null default 0,
  edits         bigint      not null default 0,
  new_pages     bigint      not null default 0,
  log_events    bigint      not null default 0,
  categorize    bigint      not null default 0,
  bot_changes   bigint      not null default 0,
  anon_changes  bigint      not null default 0,
  bytes_added   bigint      not null default 0,
  bytes_removed bigint      not null default 0,
  primary key (wiki, day, namespace)
);
create index if not exists wiki_activity_day_day_idx on wiki_activity_day (day);

-- Creates the month's partition of wiki_recent_changes (if missing and not below the horizon),
-- moving the month's rows out of the default partition in the same transaction. Returns whether
-- it created one. Insert-only partitions get autovacuum settings that keep the visibility map
-- current (index-only scans) and freeze early.
create or replace function wikistream_ensure_month(m timestamptz) returns boolean
language plpgsql as $fn$
declare
  lo timestamptz := date_trunc('month', m at time zone 'UTC') at time zone 'UTC';
  hi timestamptz := (date_trunc('month', m at time zone 'UTC') + interval '1 month')
    at time zone 'UTC';
  part text := 'wiki_recent_changes_' || to_char(m at time zone 'UTC', 'YYYY_MM');
  moved bigint;
begin
  -- Two consumers may ask for the same month: they take turns, the second finds it done.
  perform pg_advisory_xact_lock(hashtext('wikistream.partitions'));
  if to_regclass(part) is not null then return false; end if;
  if hi <= (select retained_from from wiki_history_state) then return false; end if;
  lock table wiki_recent_changes in share update exclusive mode;
  lock table wiki_recent_changes_default in access exclusive mode;
  execute format('create table %I (like wiki_recent_changes including defaults
    including constraints including storage including compression)', part);
  execute format('alter table %I set (autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_vacuum_insert_threshold = 100000, autovacuum_freeze_min_age = 0,
    autovacuum_analyze_scale_factor = 0.02)', part);
  execute format('with moved as (delete from wiki_recent_changes_default
      where event_time >= $1 and event_time < $2 returning *)
    insert into %I select * from moved', part) using lo, hi;
  get diagnostics moved = row_count;
  -- A matching check constraint lets the attach skip its validation scan.
  execute format('alter table %I add constraint %I check (event_time >= %L and event_time < %L)',
    part, part || '_range', lo, hi);
  execute format('alter table wiki_recent_changes attach partition %I
    for values from (%L) to (%L)', part, lo, hi);
  execute format('alter table %I drop constraint %I', part, part || '_range');
  if moved > 0 then
    raise notice 'moved % rows from the default partition into %', moved, part;
  end if;
  return true;
end $fn$;

-- `raw` is most of a row: compress it with lz4 where the server has it (pglz otherwise). PostgreSQL
-- compresses only rows over ~2 KB (TOAST_TUPLE_THRESHOLD), so this helps the large rows alone. The
-- partitioned table and its partitions copy it (`like ... including compression`).
do $lz4$
begin
  if exists (select 1 from pg_settings
    where name = 'default_toast_compression' and 'lz4' = any(enumvals)) then
    alter table wiki_recent_changes alter column raw set compression lz4;
  end if;
end $lz4$;

-- The conversion: copy an unpartitioned wiki_recent_changes into the partitioned layout.
do $conv$
declare
  old_rel regclass := to_regclass('wiki_recent_changes');
  idx record;
  defs text[] := '{}';
  def text;
  m timestamptz;
  n_old bigint;
  n_new bigint;
begin
  if old_rel is null then
    raise exception 'wiki_recent_changes is missing: migration 0001 must run first';
  end if;
  if (select relkind from pg_class where oid = old_rel) = 'p' then return; end if;
  -- Secondary indexes as they are (whatever earlier migrations added), to rebuild on the new table.
  for idx in select i.indexrelid::regclass as name, pg_get_indexdef(i.indexrelid) as def
    from pg_index i where i.indrelid = old_rel and not i.indisprimary loop
    defs := defs || idx.def;
    execute format('alter index %s rename to %I', idx.name, idx.name::text || '_unpartitioned');
  end loop;
  alter table wiki_recent_changes rename to wiki_recent_changes_unpartitioned;
  alter table wiki_recent_changes_unpartitioned
    rename constraint wiki_recent_changes_pkey to wiki_recent_changes_unpartitioned_pkey;
  create table wiki_recent_changes (like wiki_recent_changes_unpartitioned
    including defaults including constraints including storage including compression
    including comments)
    partition by range (event_time);
  -- An rcid's timestamp never changes, so (wiki, rcid, event_time) dedupes as (wiki, rcid) did.
  alter table wiki_recent_changes add primary key (wiki, rcid, event_time);
  foreach def in array defs loop execute def; end loop;
  create table wiki_recent_changes_default partition of wiki_recent_changes default;
  for m in select distinct date_trunc('month', event_time, 'UTC')
    from wiki_recent_changes_unpartitioned loop
    perform wikistream_ensure_month(m);
  end loop;
  perform wikistream_ensure_month(now());
  perform wikistream_ensure_month(now() + interval '1 month');
  insert into wiki_recent_changes select * from wiki_recent_changes_unpartitioned;
  get diagnostics n_new = row_count;
  select count(*) into n_old from wiki_recent_changes_unpartitioned;
  if n_new <> n_old then
    raise exception 'conversion copied % rows of %', n_new, n_old;
  end if;
  -- The rollups start exact: counted from the rows already stored.
  insert into wiki_activity_hour
  select wiki, date_trunc('hour', event_time, 'UTC'), coalesce(namespace, -1),
    count(*), count(*) filter (where change_type = 'edit'),
    count(*) filter (where change_type = 'new'), count(*) filter (where change_type = 'log'),
    count(*) filter (where change_type = 'categorize'), count(*) filter (where is_bot),
    count(*) filter (where is_anon),
    coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0),
    coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0)
  from wiki_recent_changes_unpartitioned group by 1, 2, 3;
  insert into wiki_activity_day
  select wiki, date_trunc('day', hour, 'UTC'), namespace, sum(changes), sum(edits),
    sum(new_pages), sum(log_events), sum(categorize), sum(bot_changes), sum(anon_changes),
    sum(bytes_added), sum(bytes_removed)
  from wiki_activity_hour group by 1, 2, 3;
  drop table wiki_recent_changes_unpartitioned;
end $conv$;
