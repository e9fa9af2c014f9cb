-- Indexes for the dashboard's bounded queries (lib/dashboard.ts).

-- Newest new pages in a time window: a small partial index, newest first.
create index if not exists wiki_recent_changes_new_pages_idx
  on wiki_recent_changes (event_time desc)
  where change_type = 'new';

-- Most-edited pages of the last hour: the window scan reads (wiki, page_id) from the index alone,
-- without visiting the wide heap rows (raw jsonb).
create index if not exists wiki_recent_changes_page_edits_idx
  on wiki_recent_changes (event_time) include (wiki, page_id)
  where change_type in ('edit', 'new');
