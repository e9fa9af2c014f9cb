/** @module The SQL of redactions: recording visibility changes and page events, applying them. */

/**
 * The batch's own rows as the redaction statements look them up, from a JSON array parameter
 * (built by the client, see `batchKeys` in redactions.ts): each row's revision id, a log row's
 * log id, a non-log row's title.
 */
const keys = (n: number) =>
  `json_to_recordset($${n}::text::json) as k(wiki text, rev_id bigint, log_id bigint, title text)`;

/** Records visibility changes ($1: JSON array); hidden bits only ever add up (order-free). */
export const RECORD_VISIBILITY_SQL = `
insert into wiki_visibility_changes as v
  (wiki, target, target_id, hidden, log_id, redacted_at)
select wiki, target, target_id, bit_or(hidden), max(log_id), max(redacted_at)
from json_to_recordset($1::text::json) as x(wiki text, target text,
  target_id bigint, hidden integer, log_id bigint, redacted_at timestamptz)
group by wiki, target, target_id
order by wiki, target, target_id
on conflict (wiki, target, target_id) do update set
  hidden = v.hidden | excluded.hidden,
  log_id = greatest(v.log_id, excluded.log_id),
  redacted_at = greatest(v.redacted_at, excluded.redacted_at)
where (v.hidden | excluded.hidden, greatest(v.log_id, excluded.log_id),
    greatest(v.redacted_at, excluded.redacted_at))
  is distinct from (v.hidden, v.log_id, v.redacted_at)`;

/** Records page deletions and restores ($1: JSON array); the highest log id per page wins. */
export const RECORD_PAGE_EVENTS_SQL = `
insert into wiki_page_deletions as d (wiki, title, action, log_id, event_time)
select distinct on (wiki, title) wiki, title, action, log_id, event_time
from json_to_recordset($1::text::json) as x(wiki text, title text,
  action text, log_id bigint, event_time timestamptz)
order by wiki, title, log_id desc, event_time desc
on conflict (wiki, title) do update set
  action = excluded.action, log_id = excluded.log_id, event_time = excluded.event_time
where excluded.log_id > d.log_id`;

/**
 * Whether the batch's own rows ($1, see `keys`) meet a recorded visibility change (`visibility`)
 * or page deletion or restore (`pages`): the part of the candidates of APPLY_VISIBILITY_SQL and
 * APPLY_PAGE_DELETIONS_SQL that comes from the batch. When neither the batch records one
 * nor its rows meet one, the statement would change nothing, and is skipped: it costs a plan and
 * an executor start over every partition of wiki_recent_changes.
 */
export const KNOWN_REDACTIONS_SQL = `
with s as materialized (select * from ${keys(1)})
select exists (
    select from s join wiki_visibility_changes v
      on v.wiki = s.wiki and v.target = 'revision' and v.target_id = s.rev_id
    where s.rev_id is not null
  ) or exists (
    select from s join wiki_visibility_changes v
      on v.wiki = s.wiki and v.target = 'logging' and v.target_id = s.log_id
    where s.log_id is not null
  ) as visibility,
  exists (
    select from s join wiki_page_deletions d on d.wiki = s.wiki and d.title = s.title
    where s.title is not null
  ) as pages`;

/**
 * Applies the known visibility changes to the rows they concern: the targets recorded now ($1)
 * and the targets of the batch's own rows ($2, a redaction that arrived before its row). Hidden
 * values become NULL in the typed columns and leave `raw`; rows already redacted are not touched.
 */
export const APPLY_VISIBILITY_SQL = `
with cand as (
  select wiki, target, target_id from json_to_recordset($1::text::json)
    as x(wiki text, target text, target_id bigint)
  union
  select wiki, 'revision', rev_id from ${keys(2)} where rev_id is not null
  union
  select wiki, 'logging', log_id from ${keys(2)} where log_id is not null
), known as (
  select v.* from cand join wiki_visibility_changes v using (wiki, target, target_id)
), hits as (
  select r.wiki, r.rcid, k.hidden & 1 <> 0 as sha1, false as action, k.hidden, k.redacted_at
  from known k join wiki_recent_changes r on r.wiki = k.wiki and r.rev_id = k.target_id
  where k.target = 'revision'
  union all
  select r.wiki, r.rcid, false, k.hidden & 1 <> 0, k.hidden, k.redacted_at
  from known k join wiki_recent_changes r on r.wiki = k.wiki and r.log_id = k.target_id
  where k.target = 'logging' and r.change_type = 'log'
), per_row as (
  select wiki, rcid, bool_or(sha1) as sha1, bool_or(action) as action,
    bit_or(hidden) & 2 <> 0 as comment, bit_or(hidden) & 4 <> 0 as usr,
    bit_or(hidden) & 8 <> 0 as suppressed, max(redacted_at) as redacted_at
  from hits group by wiki, rcid
)
update wiki_recent_changes r set
  user_name = case when h.usr then null else r.user_name end,
  user_id = case when h.usr then null else r.user_id end,
  user_hidden = r.user_hidden or h.usr,
  comment = case when h.comment then null else r.comment end,
  comment_hidden = r.comment_hidden or h.comment,
  sha1 = case when h.sha1 then null else r.sha1 end,
  sha1_hidden = r.sha1_hidden or h.sha1,
  title = case when h.action then null else r.title end,
  log_params = case when h.action then null else r.log_params end,
  action_hidden = r.action_hidden or h.action,
  suppressed = r.suppressed or h.suppressed,
  redacted_at = greatest(r.redacted_at, h.redacted_at),
  raw = wikistream_redact_raw(r.raw, h.usr, h.comment, h.sha1, h.action)
from per_row h
where r.wiki = h.wiki and r.rcid = h.rcid
  and (r.user_hidden < h.usr or r.comment_hidden < h.comment or r.sha1_hidden < h.sha1
    or r.action_hidden < h.action or r.suppressed < h.suppressed
    or r.redacted_at is distinct from greatest(r.redacted_at, h.redacted_at)
    or (h.usr and (r.user_name is not null or r.user_id is not null))
    or (h.comment and r.comment is not null) or (h.sha1 and r.sha1 is not null)
    or (h.action and (r.title is not null or r.log_params is not null))
    or r.raw is distinct from wikistream_redact_raw(r.raw, h.usr, h.comment, h.sha1, h.action))`;

/**
 * Applies the latest deletion or restore of each page concerned ($1: the pages recorded now; and
 * the pages of the batch's own rows, $3) to the page's non-log rows: deleted when not newer than the
 * deletion, unmarked otherwise. With $2 (REDACT_DELETED_PAGES) a deleted row also loses its
 * comment, user and sha1, in the typed columns and in `raw`.
 */
export const APPLY_PAGE_DELETIONS_SQL = `
with cand as (
  select wiki, title from json_to_recordset($1::text::json) as x(wiki text, title text)
  union
  select wiki, title from ${keys(3)} where title is not null
), hits as (
  select r.wiki, r.rcid,
    case when d.action = 'delete' and r.event_time <= d.event_time then d.event_time end
      as deleted_at
  from cand join wiki_page_deletions d using (wiki, title)
  join wiki_recent_changes r on r.wiki = d.wiki and r.title = d.title
  where r.change_type <> 'log'
), todo as (
  select h.*, h.deleted_at is not null and $2::boolean as redact from hits h
)
update wiki_recent_changes r set
  page_deleted_at = h.deleted_at,
  comment = case when h.redact then null else r.comment end,
  user_name = case when h.redact then null else r.user_name end,
  user_id = case when h.redact then null else r.user_id end,
  sha1 = case when h.redact then null else r.sha1 end,
  raw = case when h.redact then wikistream_redact_raw(r.raw, true, true, true, false)
    else r.raw end
from todo h
where r.wiki = h.wiki and r.rcid = h.rcid
  and (r.page_deleted_at is distinct from h.deleted_at
    or (h.redact and (r.comment is not null or r.user_name is not null
      or r.user_id is not null or r.sha1 is not null
      or r.raw is distinct from wikistream_redact_raw(r.raw, true, true, true, false))))`;
