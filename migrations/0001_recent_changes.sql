-- Every change from list=recentchanges, one row per (wiki, rcid). Ids are 64-bit.
create table if not exists wiki_recent_changes (
  wiki            text        not null,
  rcid            bigint      not null,
  server_name     text        not null,
  change_type     text        not null,
  namespace       integer,
  title           text,
  page_id         bigint,
  rev_id          bigint,
  old_rev_id      bigint,
  user_name       text,
  user_id         bigint,
  is_anon         boolean     not null default false,
  is_temp         boolean     not null default false,
  is_bot          boolean     not null default false,
  is_minor        boolean     not null default false,
  is_new          boolean     not null default false,
  old_len         integer,
  new_len         integer,
  event_time      timestamptz not null,
  comment         text,
  tags            text[]      not null default '{}',
  sha1            text,
  log_id          bigint,
  log_type        text,
  log_action      text,
  log_params      jsonb,
  user_hidden     boolean     not null default false,
  comment_hidden  boolean     not null default false,
  action_hidden   boolean     not null default false,
  raw             jsonb       not null,
  kafka_partition integer     not null,
  kafka_offset    bigint      not null,
  ingested_at     timestamptz not null default now(),
  primary key (wiki, rcid)
);

create index if not exists wiki_recent_changes_event_time_idx
  on wiki_recent_changes (event_time);
create index if not exists wiki_recent_changes_wiki_page_time_idx
  on wiki_recent_changes (wiki, page_id, event_time);

-- Per-minute activity per wiki, maintained by the consumer from newly inserted rows only.
create table if not exists wiki_activity_minute (
  wiki          text        not null,
  minute        timestamptz not null,
  changes       bigint      not null default 0,
  edits         bigint      not null default 0,
  new_pages     bigint      not null default 0,
  log_events    bigint      not null default 0,
  categorize    bigint      not null default 0,
  bot_changes   bigint      not null default 0,
  anon_changes  bigint      not null default 0,
  bytes_added   bigint      not null default 0,
  bytes_removed bigint      not null default 0,
  primary key (wiki, minute)
);
create index if not exists wiki_activity_minute_minute_idx on wiki_activity_minute (minute);

-- Records that could not be decoded: the original bytes, why, and where from. Never dropped.
create table if not exists dead_letters (
  id          bigserial   primary key,
  topic       text        not null,
  partition   integer     not null,
  "offset"    bigint      not null,
  key         bytea,
  value       bytea,
  headers     jsonb       not null default '{}',
  reason      text        not null,
  error       text        not null,
  received_at timestamptz not null default now(),
  unique (topic, partition, "offset")
);
