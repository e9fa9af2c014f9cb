-- Following the wiki after the fact: revision deletion, suppression and page deletion (docs/redaction.md).

-- Hidden flags the Action API reports, and when a redaction or a page deletion reached the row.
alter table wiki_recent_changes
  add column if not exists sha1_hidden     boolean     not null default false,
  add column if not exists suppressed      boolean     not null default false,
  add column if not exists redacted_at     timestamptz,
  add column if not exists page_deleted_at timestamptz;

-- The lookups a redaction makes: by revision, by log entry, by page title.
create index if not exists wiki_recent_changes_rev_idx
  on wiki_recent_changes (wiki, rev_id) where rev_id is not null;
create index if not exists wiki_recent_changes_log_idx
  on wiki_recent_changes (wiki, log_id) where log_id is not null;
create index if not exists wiki_recent_changes_title_idx
  on wiki_recent_changes (wiki, title) where change_type <> 'log';

-- Every visibility change seen (delete/revision, delete/event, suppress/revision, suppress/event),
-- per target. `hidden` is the OR of every new bitfield seen (1 text or action, 2 comment, 4 user,
-- 8 suppressed): redactions only ever add, so the result does not depend on arrival order, and a
-- row that arrives later (another partition, a replay) is redacted on arrival.
create table if not exists wiki_visibility_changes (
  wiki        text        not null,
  target      text        not null check (target in ('revision', 'logging')),
  target_id   bigint      not null,
  hidden      integer     not null,
  log_id      bigint      not null,
  redacted_at timestamptz not null,
  primary key (wiki, target, target_id)
);

-- The latest page deletion or restore per page (highest log id wins). Rows of the page that are
-- not log rows and are not newer than a deletion are marked deleted.
create table if not exists wiki_page_deletions (
  wiki       text        not null,
  title      text        not null,
  action     text        not null check (action in ('delete', 'restore')),
  log_id     bigint      not null,
  event_time timestamptz not null,
  primary key (wiki, title)
);

-- `raw` without the hidden fields (the Action API omits a hidden field the same way).
create or replace function wikistream_redact_raw(
  raw jsonb, hide_user boolean, hide_comment boolean, hide_sha1 boolean, hide_action boolean
) returns jsonb language sql immutable as $$
  select case when hide_action
    then (r #- '{meta,uri}') - array['title', 'title_url', 'log_params', 'logparams',
      'log_action_comment']
    else r end
  from (select raw
    - case when hide_user then array['user', 'userid'] else '{}'::text[] end
    - case when hide_comment then array['comment', 'parsedcomment', 'log_action_comment']
        else '{}'::text[] end
    - case when hide_sha1 then array['sha1'] else '{}'::text[] end as r) s
$$;
