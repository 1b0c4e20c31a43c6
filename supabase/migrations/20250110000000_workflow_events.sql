-- Live workflow events (GET /events): an event log written by a trigger on mvp_workflows, and a
-- NOTIFY on channel `workflow_sync_events` for every logged event. Re-runnable; valid on a plain
-- Postgres 15+, on a Supabase project and on embedded PGlite.
--
-- NOTIFY payload (small on purpose: NOTIFY payloads are limited to 8000 bytes and nodes can be
-- large; the service loads the row itself):
--   {"op": "INSERT" | "UPDATE" | "DELETE", "id": <workflow id>, "user_id": <owner>,
--    "version": <row version>, "seq": <workflow_events.id>}
--
-- ORDER. The log id (the SSE `id:` of an event) is allocated at COMMIT time, under a transaction
-- advisory lock that is held until the commit is visible: the trigger is a deferred constraint
-- trigger, so it runs as the transaction commits. Hence log ids follow commit order: once an event
-- is visible, no event with a lower id can become visible later. That is what makes
-- `Last-Event-ID` replay (`where user_id = $1 and id > $2`) exact, with no gap and no duplicate.
-- The cost is small: Postgres already serialises the commits of every transaction that NOTIFYs
-- (PreCommit_Notify takes a cluster-wide lock until after the commit), and this lock covers the
-- same tail of the commit. (A transaction that runs `SET CONSTRAINTS ALL IMMEDIATE` would fire
-- the trigger early and hold the lock until its commit; nothing in the service does that.)
--
-- An UPDATE that moves a row to another owner logs a DELETE for the old owner and an INSERT for
-- the new one, so neither ever sees the other's row. TRUNCATE is not logged.
--
-- RETENTION. The log is for catch-up after a disconnect, not history: rows older than 24 hours may
-- be purged with `select public.purge_workflow_events(interval '24 hours')` (the cleanup cron calls
-- it). The purge cuts the log at an id, so what remains is always a suffix of it, and it records
-- the highest purged id in `workflow_events_purged`: a client whose Last-Event-ID is below it is
-- told to reload (SSE `event: reset`) instead of being replayed an incomplete history.

create table if not exists public.workflow_events (
  id bigint generated always as identity primary key,
  user_id uuid not null,
  workflow_id uuid not null,
  op text not null,
  version integer,
  created_at timestamptz not null default now()
);

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'workflow_events_op_check') then
    alter table public.workflow_events add constraint workflow_events_op_check
      check (op in ('INSERT', 'UPDATE', 'DELETE'));
  end if;
end
$$;

-- Replay and "latest event of a user": (user_id, id).
create index if not exists workflow_events_user_id_idx on public.workflow_events (user_id, id);
-- The purge finds its cut point by age; the table is append-only, so a BRIN index is enough.
create index if not exists workflow_events_created_brin on public.workflow_events using brin (created_at);

-- The highest id the purge removed (one row).
create table if not exists public.workflow_events_purged (
  singleton boolean primary key default true,
  purged_through bigint not null default 0,
  purged_at timestamptz not null default now(),
  constraint workflow_events_purged_singleton check (singleton)
);

alter table public.workflow_events enable row level security;
alter table public.workflow_events_purged enable row level security;

drop policy if exists "own workflow events: select" on public.workflow_events;
create policy "own workflow events: select" on public.workflow_events for select to authenticated
  using ((select auth.uid()) = user_id);
-- The purge horizon says nothing about anyone: every signed-in user may read it.
drop policy if exists "workflow events horizon: select" on public.workflow_events_purged;
create policy "workflow events horizon: select" on public.workflow_events_purged for select to authenticated
  using (true);

-- Users read their own events; only the trigger (as the table owner) writes them.
revoke all on public.workflow_events, public.workflow_events_purged from public, anon, authenticated;
grant select on public.workflow_events, public.workflow_events_purged to authenticated;
grant all on public.workflow_events, public.workflow_events_purged to service_role;
-- (Supabase's default privileges grant its sequences to anon and authenticated: not this one.)
do $$
begin
  execute format('revoke all on sequence %s from public, anon, authenticated',
                 pg_get_serial_sequence('public.workflow_events', 'id'));
end
$$;

-- ---------------------------------------------------------------------------
-- The trigger: log, then notify with the log id. SECURITY DEFINER so that a user's write (as
-- `authenticated`, under RLS) can append to a log the user may only read.
create or replace function public.workflow_events_log() returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
  v_seq bigint;
begin
  -- Commit-order ids (see the header): released when the transaction ends, after its commit.
  -- created_at is the clock at that point too (not the transaction's start), so age follows ids.
  -- The one-bigint key space is apart from the (int, int) keys the service's own locks use.
  perform pg_advisory_xact_lock(hashtextextended('workflow_sync_events', 0));

  if tg_op = 'UPDATE' and old.user_id is distinct from new.user_id then
    insert into public.workflow_events (user_id, workflow_id, op, version, created_at)
      values (old.user_id, old.id, 'DELETE', old.version, clock_timestamp()) returning id into v_seq;
    perform pg_notify('workflow_sync_events', json_build_object(
      'op', 'DELETE', 'id', old.id, 'user_id', old.user_id, 'version', old.version, 'seq', v_seq)::text);
    insert into public.workflow_events (user_id, workflow_id, op, version, created_at)
      values (new.user_id, new.id, 'INSERT', new.version, clock_timestamp()) returning id into v_seq;
    perform pg_notify('workflow_sync_events', json_build_object(
      'op', 'INSERT', 'id', new.id, 'user_id', new.user_id, 'version', new.version, 'seq', v_seq)::text);
  elsif tg_op = 'DELETE' then
    insert into public.workflow_events (user_id, workflow_id, op, version, created_at)
      values (old.user_id, old.id, 'DELETE', old.version, clock_timestamp()) returning id into v_seq;
    perform pg_notify('workflow_sync_events', json_build_object(
      'op', 'DELETE', 'id', old.id, 'user_id', old.user_id, 'version', old.version, 'seq', v_seq)::text);
  else
    insert into public.workflow_events (user_id, workflow_id, op, version, created_at)
      values (new.user_id, new.id, tg_op, new.version, clock_timestamp()) returning id into v_seq;
    perform pg_notify('workflow_sync_events', json_build_object(
      'op', tg_op, 'id', new.id, 'user_id', new.user_id, 'version', new.version, 'seq', v_seq)::text);
  end if;
  return null;
end
$$;

revoke all on function public.workflow_events_log() from public, anon, authenticated;

drop trigger if exists mvp_workflows_events on public.mvp_workflows;
create constraint trigger mvp_workflows_events
  after insert or update or delete on public.mvp_workflows
  deferrable initially deferred
  for each row execute function public.workflow_events_log();

-- ---------------------------------------------------------------------------
-- purge_workflow_events: removes the events older than p_older_than (default 24 hours) and
-- answers how many rows it removed (with p_dry_run: would remove, and removes nothing). The cut
-- is an id: every event up to the newest one older than the limit goes, so the log stays a suffix.
create or replace function public.purge_workflow_events(
  p_older_than interval default interval '24 hours',
  p_dry_run boolean default false
) returns bigint
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_cut bigint;
  v_rows bigint;
begin
  if p_older_than is null or p_older_than < interval '0' then
    raise exception 'p_older_than must be a non-negative interval' using errcode = '22023';
  end if;
  select max(id) into v_cut from public.workflow_events where created_at < now() - p_older_than;
  if v_cut is null then
    return 0;
  end if;
  if p_dry_run then
    select count(*) into v_rows from public.workflow_events where id <= v_cut;
    return v_rows;
  end if;
  delete from public.workflow_events where id <= v_cut;
  get diagnostics v_rows = row_count;
  insert into public.workflow_events_purged as p (singleton, purged_through, purged_at)
    values (true, v_cut, now())
    on conflict (singleton) do update
      set purged_through = greatest(p.purged_through, excluded.purged_through), purged_at = excluded.purged_at;
  return v_rows;
end
$$;

revoke all on function public.purge_workflow_events(interval, boolean) from public, anon, authenticated;
grant execute on function public.purge_workflow_events(interval, boolean) to service_role;
