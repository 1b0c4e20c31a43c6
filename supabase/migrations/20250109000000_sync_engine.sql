-- Sync engine: the per-workflow stop point and the atomic writes of a sync, as SQL functions.
-- Re-runnable and valid on a plain Postgres 15+ and on a Supabase project (like the first
-- migration). The functions are SECURITY INVOKER: called as `authenticated` (a user's sync, or
-- supabase-js `rpc` with a user token) they run under the caller's RLS, so a user can only ever
-- write their own workflows' ledger, counts and logs.
--
-- COUNTING RULE (also in the README):
--   * execution_count        counts executions that reached a final status:
--                            success, error, crashed, canceled;
--   * successful_executions  counts `success`;
--   * failed_executions      counts `error` and `crashed`;
--   * `canceled`             counts only in execution_count;
--   * `new`, `running`, `waiting`, `unknown` (and any status n8n may add later) are recorded in the
--     ledger but counted nowhere until the execution reaches a final status.
--   Each ledger row remembers what it contributes (`count_category`); inserting a row or changing
--   its status adds (new contribution - old contribution) to the workflow's counts in the same
--   statement's transaction, so every execution is counted exactly once and a status change moves
--   the counts exactly once. A final status never goes back to an open one. Deleting or pruning
--   executions in n8n never touches the ledger, so counts never go down.

-- ---------------------------------------------------------------------------
-- Columns

alter table public.mvp_workflows
  -- Highest n8n execution id recorded for the workflow (informational high-water mark).
  add column if not exists last_seen_execution_id bigint,
  -- The stop point of the incremental read: every execution of this workflow with an id at or
  -- below it is final and in the ledger, gone from n8n, or an open ledger row that the engine
  -- re-checks by id. NULL: never completed a pass, read everything.
  add column if not exists execution_floor_id bigint;

alter table public.workflow_executions
  -- n8n ids are numeric strings from one instance-wide sequence; numeric order = start order.
  add column if not exists n8n_execution_seq bigint,
  -- What this row currently contributes to the workflow's counts: 'success' | 'failed' |
  -- 'canceled' (execution_count only) | NULL (nothing: open, or a row from before this engine).
  add column if not exists count_category text,
  -- Set when an open execution turned out to be deleted in n8n: it is no longer re-checked.
  add column if not exists vanished_at timestamptz;

update public.workflow_executions
   set n8n_execution_seq = n8n_execution_id::bigint
 where n8n_execution_seq is null and n8n_execution_id ~ '^[0-9]{1,18}$';

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'workflow_executions_count_category_check') then
    alter table public.workflow_executions add constraint workflow_executions_count_category_check
      check (count_category is null or count_category in ('success', 'failed', 'canceled'));
  end if;
end
$$;

-- Newest first per workflow: the execution history route and "last execution".
create index if not exists workflow_executions_workflow_seq_idx
  on public.workflow_executions (workflow_id, n8n_execution_seq desc);
-- Open rows (not final, not vanished): the stop point stays below them or they are re-checked.
create index if not exists workflow_executions_open_idx
  on public.workflow_executions (workflow_id, n8n_execution_seq)
  where status not in ('success', 'error', 'crashed', 'canceled') and vanished_at is null;

-- The instance scan's stop points for workflows that had nothing new (see the engine: a scan of
-- every execution of the instance, for /sync/all). Such a workflow's pass is complete too, so its
-- stop point may move up to the scan's ceiling; writing that on mvp_workflows would fire the
-- workflow events trigger, Realtime and updated_at for rows whose data did not change, so it is
-- kept here. A workflow's stop point is greatest(mvp_workflows.execution_floor_id, this floor_id)
-- when the former is set (both are valid stop points, and so is the larger one); a row here is only
-- ever written for a workflow whose own stop point is set. Cleanup (purge_expired_data) keeps using
-- the mvp_workflows column alone, which only makes it purge less.
create table if not exists public.workflow_scan_floors (
  workflow_id uuid primary key references public.mvp_workflows (id) on delete cascade,
  floor_id bigint not null,
  updated_at timestamptz not null default now()
);
alter table public.workflow_scan_floors enable row level security;
drop policy if exists "own scan floors: select" on public.workflow_scan_floors;
-- A user's sync reads the stop point of its own workflows (through the mvp_workflows policy).
create policy "own scan floors: select" on public.workflow_scan_floors for select to authenticated
  using (exists (select 1 from public.mvp_workflows m where m.id = workflow_id));
revoke all on public.workflow_scan_floors from public, anon, authenticated;
grant select on public.workflow_scan_floors to authenticated;
grant all on public.workflow_scan_floors to service_role;

-- ---------------------------------------------------------------------------
-- ingest_executions: one page of n8n executions for one workflow, in one transaction.
-- The stored stop point it works from is the workflow's effective one:
-- greatest(execution_floor_id, workflow_scan_floors.floor_id) when execution_floor_id is set.
--
-- p_executions: JSON array of n8n execution items as the public API returns them
--   ({ "id", "status", "mode", "finished", "startedAt", "stoppedAt", "workflowId", ... }).
--   Items whose workflowId is not the workflow's n8n id are ignored. When an id appears twice,
--   the later item wins (the engine puts the older running-list snapshot first).
-- p_options (all optional):
--   "complete": true        this page ends a pass that read every execution above the stored stop
--                           point; the stop point may advance (and only here);
--   "ceiling": "123"        with complete: an execution id that n8n had assigned before the running
--                           list of this sync was read (see the engine for why);
--   "started_before": ts    with complete, for n8n without a running list: the stop point stays
--                           below every execution that started after this instant;
--   "advance": false        with complete: keep the stored stop point unless something changed
--                           (a re-sync with nothing new writes nothing);
--   "page_size": 250, "scan": 10000
--                           with complete: open rows hold the stop point below them (the next
--                           list pass re-reads them) or are re-checked by id, whichever costs
--                           fewer n8n calls (see below);
--   "hold": false           with complete: never hold the stop point below open rows (they are
--                           re-checked by id instead); the instance scan asks for this, since a
--                           held stop point would make it re-read the whole instance down to it;
--   "vanished": ["12"]      open executions that n8n answered 404 for: stop re-checking them;
--   "recheck_limit": 500    with complete: how many open rows at or below the stop point to return.
-- Returns { inserted, updated, ignored, vanished, delta: {execution_count, successful_executions,
--   failed_executions}, floor, floor_advanced, workflow_written, recheck: [ids] } where recheck
--   (complete passes only) lists open rows the list will not re-read, oldest first.
create or replace function public.ingest_executions(
  p_workflow_id uuid,
  p_executions jsonb,
  p_synced_at timestamptz default now(),
  p_options jsonb default '{}'::jsonb
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  w record;
  v_opts jsonb := coalesce(p_options, '{}'::jsonb);
  v_items jsonb := coalesce(p_executions, '[]'::jsonb);
  v_inserted integer := 0;
  v_updated integer := 0;
  v_ignored integer := 0;
  v_vanished integer := 0;
  v_d_count bigint := 0;
  v_d_success bigint := 0;
  v_d_failed bigint := 0;
  v_max_seq bigint;
  v_complete boolean := coalesce((v_opts ->> 'complete')::boolean, false);
  v_advance boolean := coalesce((v_opts ->> 'advance')::boolean, true);
  v_page integer := greatest(1, coalesce((v_opts ->> 'page_size')::integer, 250));
  v_scan integer := greatest(1, coalesce((v_opts ->> 'scan')::integer, 10000));
  v_open_total bigint;
  v_best bigint;
  v_ceiling bigint;
  v_cutoff timestamptz;
  v_floor bigint;
  v_floor_advanced boolean := false;
  v_last record;
  v_changed boolean;
  v_recheck jsonb := '[]'::jsonb;
begin
  if jsonb_typeof(v_items) <> 'array' then
    raise exception 'p_executions must be a JSON array' using errcode = '22023';
  end if;

  -- Every writer of this workflow's ledger takes the workflow row first: concurrent syncs of the
  -- same workflow serialise here (no deadlocks, and the old statuses read below are stable).
  -- Under RLS another user's workflow is simply not found.
  select m.id, m.user_id, m.n8n_workflow_id, m.last_seen_execution_id,
         case when m.execution_floor_id is null then null
              else greatest(m.execution_floor_id, f.floor_id) end as execution_floor_id
    into w
    from public.mvp_workflows m
    left join public.workflow_scan_floors f on f.workflow_id = m.id
   where m.id = p_workflow_id
     for update of m;
  if not found then
    raise exception 'workflow % not found', p_workflow_id using errcode = 'P0002';
  end if;

  if jsonb_array_length(v_items) > 0 then
    if exists (
      select 1 from jsonb_array_elements(v_items) e
       where coalesce(e ->> 'id', '') !~ '^[0-9]{1,18}$' or coalesce(e ->> 'status', '') = ''
    ) then
      raise exception 'every execution needs a numeric id and a status' using errcode = '22023';
    end if;

    with src_all as (
      select e ->> 'id' as n8n_id,
             (e ->> 'id')::bigint as seq,
             e ->> 'status' as status,
             e ->> 'mode' as mode,
             coalesce((e ->> 'finished')::boolean, false) as finished,
             (e ->> 'startedAt')::timestamptz as started_at,
             (e ->> 'stoppedAt')::timestamptz as stopped_at,
             e ->> 'workflowId' as n8n_workflow_id,
             ord
        from jsonb_array_elements(v_items) with ordinality as t(e, ord)
    ),
    src as (
      select distinct on (seq) n8n_id, seq, status, mode, finished, started_at, stopped_at,
             case status
               when 'success' then 'success'
               when 'error' then 'failed'
               when 'crashed' then 'failed'
               when 'canceled' then 'canceled'
             end as cat
        from src_all
       where n8n_workflow_id is null or n8n_workflow_id = w.n8n_workflow_id
       order by seq, ord desc
    ),
    prev as (
      select x.n8n_execution_id, x.count_category
        from public.workflow_executions x
       where x.workflow_id = p_workflow_id
         and x.n8n_execution_id in (select n8n_id from src)
    ),
    up as (
      insert into public.workflow_executions as x
        (workflow_id, user_id, n8n_execution_id, n8n_execution_seq, n8n_workflow_id, status, mode,
         finished, started_at, stopped_at, count_category, created_at, updated_at)
      select p_workflow_id, w.user_id, s.n8n_id, s.seq, w.n8n_workflow_id, s.status, s.mode,
             s.finished, s.started_at, s.stopped_at, s.cat, p_synced_at, p_synced_at
        from src s
      on conflict (workflow_id, n8n_execution_id) do update
         set status = excluded.status,
             mode = coalesce(excluded.mode, x.mode),
             finished = excluded.finished,
             started_at = coalesce(excluded.started_at, x.started_at),
             stopped_at = coalesce(excluded.stopped_at, x.stopped_at),
             n8n_execution_seq = excluded.n8n_execution_seq,
             -- a row from before this engine (final, never categorised) keeps contributing nothing
             count_category = case
               when x.count_category is null and x.status in ('success', 'error', 'crashed', 'canceled')
                 then null
               else excluded.count_category end,
             vanished_at = null,
             updated_at = excluded.updated_at
       -- Unchanged rows are not written at all; a final status never reverts to an open one
       -- (an older snapshot, e.g. the running list, must not undo a newer answer).
       where (x.status is distinct from excluded.status
              or x.finished is distinct from excluded.finished
              or x.stopped_at is distinct from excluded.stopped_at
              or x.vanished_at is not null)
         and not (x.status in ('success', 'error', 'crashed', 'canceled')
                  and excluded.status not in ('success', 'error', 'crashed', 'canceled'))
      returning x.n8n_execution_id, x.n8n_execution_seq, x.count_category
    )
    select count(*) filter (where p.n8n_execution_id is null),
           count(*) filter (where p.n8n_execution_id is not null),
           coalesce(sum((u.count_category is not null)::int - (p.count_category is not null)::int), 0),
           coalesce(sum((u.count_category is not distinct from 'success')::int
                        - (p.count_category is not distinct from 'success')::int), 0),
           coalesce(sum((u.count_category is not distinct from 'failed')::int
                        - (p.count_category is not distinct from 'failed')::int), 0),
           max(u.n8n_execution_seq),
           (select count(*) from src_all) - (select count(*) from src_all where n8n_workflow_id is null or n8n_workflow_id = w.n8n_workflow_id)
      into v_inserted, v_updated, v_d_count, v_d_success, v_d_failed, v_max_seq, v_ignored
      from up u
      left join prev p on p.n8n_execution_id = u.n8n_execution_id;
  end if;

  if jsonb_typeof(v_opts -> 'vanished') = 'array' and jsonb_array_length(v_opts -> 'vanished') > 0 then
    update public.workflow_executions x
       set vanished_at = p_synced_at, updated_at = p_synced_at
     where x.workflow_id = p_workflow_id
       and x.n8n_execution_id in (select jsonb_array_elements_text(v_opts -> 'vanished'))
       and x.status not in ('success', 'error', 'crashed', 'canceled')
       and x.vanished_at is null;
    get diagnostics v_vanished = row_count;
  end if;

  v_changed := v_inserted + v_updated + v_vanished > 0;
  v_floor := w.execution_floor_id;

  if v_complete then
    v_ceiling := (v_opts ->> 'ceiling')::bigint;
    if v_ceiling is null then
      raise exception 'a complete pass needs a ceiling' using errcode = '22023';
    end if;
    v_cutoff := (v_opts ->> 'started_before')::timestamptz;
    if v_cutoff is not null then
      -- Without a running list: ids follow start order, so an execution that started before the
      -- cutoff has a lower id than any run still hidden (assumed younger than the cutoff).
      v_ceiling := least(v_ceiling, coalesce((
        select max(x.n8n_execution_seq) from public.workflow_executions x
         where x.workflow_id = p_workflow_id and x.started_at < v_cutoff), 0));
    end if;
    -- Open rows above the old stop point either hold the new one below them (the next list pass
    -- re-reads them) or are re-checked by id. Pick the cheaper in n8n calls: holding it below
    -- the k-th newest open row costs ceil(its position / 250) list pages and leaves the m - k
    -- older open rows to one GET each; not holding it costs 1 page + m GETs. Only the newest
    -- `scan` ledger rows are considered, which bounds this query.
    select count(*) into v_open_total
      from public.workflow_executions x
     where x.workflow_id = p_workflow_id
       and x.status not in ('success', 'error', 'crashed', 'canceled') and x.vanished_at is null
       and x.n8n_execution_seq <= v_ceiling
       and x.n8n_execution_seq > coalesce(w.execution_floor_id, -1);
    v_floor := v_ceiling;
    if v_open_total > 0 and coalesce((v_opts ->> 'hold')::boolean, true) then
      select o.seq - 1 into v_best
        from (select r.seq, r.rn, row_number() over (order by r.seq desc) as k
                from (select x.n8n_execution_seq as seq, x.status, x.vanished_at,
                             row_number() over (order by x.n8n_execution_seq desc) as rn
                        from public.workflow_executions x
                       where x.workflow_id = p_workflow_id and x.n8n_execution_seq is not null
                       order by x.n8n_execution_seq desc
                       limit v_scan) r
               where r.status not in ('success', 'error', 'crashed', 'canceled') and r.vanished_at is null
                 and r.seq <= v_ceiling
                 and r.seq > coalesce(w.execution_floor_id, -1)) o
       where greatest(1, ceil(o.rn / v_page::numeric)) + (v_open_total - o.k) < 1 + v_open_total
       -- on a tie, fewer list pages (GETs by id are small answers)
       order by greatest(1, ceil(o.rn / v_page::numeric)) + (v_open_total - o.k), o.k
       limit 1;
      v_floor := coalesce(v_best, v_ceiling);
    end if;
    -- Any stop point that was valid stays valid (new executions get higher ids), so the larger
    -- of two valid ones is valid: concurrent or stale passes can never move it backwards.
    v_floor := greatest(v_floor, coalesce(w.execution_floor_id, v_floor));
    if w.execution_floor_id is null
       or (v_floor > w.execution_floor_id and (v_advance or v_changed)) then
      v_floor_advanced := true;
    else
      v_floor := w.execution_floor_id;
    end if;
    select coalesce(jsonb_agg(r.n8n_execution_id), '[]'::jsonb) into v_recheck
      from (select x.n8n_execution_id, x.n8n_execution_seq
              from public.workflow_executions x
             where x.workflow_id = p_workflow_id
               and x.n8n_execution_seq <= v_floor
               and x.status not in ('success', 'error', 'crashed', 'canceled')
               and x.vanished_at is null
             -- beyond the limit, a random sample: no open row is starved of re-checks
             order by random()
             limit greatest(0, coalesce((v_opts ->> 'recheck_limit')::integer, 500))) r;
  end if;

  if v_changed or v_floor_advanced then
    select x.status, x.started_at into v_last
      from public.workflow_executions x
     where x.workflow_id = p_workflow_id and x.n8n_execution_seq is not null
     order by x.n8n_execution_seq desc
     limit 1;
    update public.mvp_workflows m
       set execution_count = m.execution_count + v_d_count,
           successful_executions = m.successful_executions + v_d_success,
           failed_executions = m.failed_executions + v_d_failed,
           last_execution_at = coalesce(v_last.started_at, m.last_execution_at),
           last_execution_status = coalesce(v_last.status, m.last_execution_status),
           last_seen_execution_id = greatest(m.last_seen_execution_id, v_max_seq),
           execution_floor_id = v_floor,
           last_sync_at = p_synced_at
     where m.id = p_workflow_id;
  end if;

  return jsonb_build_object(
    'inserted', v_inserted,
    'updated', v_updated,
    'ignored', v_ignored,
    'vanished', v_vanished,
    'delta', jsonb_build_object(
      'execution_count', v_d_count,
      'successful_executions', v_d_success,
      'failed_executions', v_d_failed),
    'floor', v_floor::text,
    'floor_advanced', v_floor_advanced,
    'workflow_written', v_changed or v_floor_advanced,
    'recheck', v_recheck
  );
end
$$;

-- ---------------------------------------------------------------------------
-- ingest_executions_batch: several ingest_executions calls in ONE transaction and one round trip
-- (the engine groups the pages of many workflows: one commit instead of one per workflow).
-- p_batches: JSON array of {"workflow_id": uuid, "executions": [...], "options": {...}}, each
-- exactly what ingest_executions takes; the same workflow may appear more than once (its entries
-- run in array order). The workflow rows are locked first, in id order, so two batches (or a
-- batch and a single ingest) never deadlock. All or nothing: any error (e.g. a workflow deleted
-- meanwhile, P0002) rolls the whole batch back, and the caller retries its entries one by one.
-- Returns the array of ingest_executions results, in input order.
create or replace function public.ingest_executions_batch(
  p_batches jsonb,
  p_synced_at timestamptz default now()
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_out jsonb[] := '{}';
  b record;
begin
  if jsonb_typeof(p_batches) <> 'array' then
    raise exception 'p_batches must be a JSON array' using errcode = '22023';
  end if;
  perform 1 from public.mvp_workflows m
   where m.id in (select (e ->> 'workflow_id')::uuid from jsonb_array_elements(p_batches) e)
   order by m.id
     for update;
  for b in
    select (e ->> 'workflow_id')::uuid as workflow_id, e -> 'executions' as executions,
           coalesce(e -> 'options', '{}'::jsonb) as options
      from jsonb_array_elements(p_batches) with ordinality as t(e, ord)
     order by ord
  loop
    v_out := array_append(v_out, public.ingest_executions(b.workflow_id, b.executions, p_synced_at, b.options));
  end loop;
  return to_jsonb(v_out);
end
$$;

-- ---------------------------------------------------------------------------
-- ingest_scan_batch: the instance scan's writes for many workflows at once, set-based (a few
-- statements for the whole batch instead of several per workflow: ~5x cheaper per workflow than
-- ingest_executions_batch at 10,000 workflows). The same rules as ingest_executions with the
-- options the scan uses: every item is upserted the same way (unchanged rows are not written, a
-- final status never reverts, counts move by each row's contribution in this transaction), and
-- for the jobs that end a workflow's pass ("final"), the stop point moves up to the ceiling
-- ("hold": false: open rows never hold it, they are listed for re-checking instead), or, with
-- "started_before" (n8n without a running list), to the workflow's newest execution started
-- before then if lower. A stop point never moves down.
-- p_batch: [{"workflow_id": uuid, "executions": [...items as for ingest_executions], "final": bool}]
--   (a workflow at most once per batch). p_options: {"ceiling": "123", "started_before": ts,
--   "recheck_limit": 500}.
-- Returns, in input order, {inserted, updated, ignored, vanished: 0, delta, floor, floor_advanced,
-- workflow_written, recheck} as ingest_executions does (recheck: final jobs only).
create or replace function public.ingest_scan_batch(
  p_batch jsonb,
  p_synced_at timestamptz,
  p_options jsonb
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
-- One call per batch of up to hundreds of workflows, of very different sizes: plan each statement
-- for the batch at hand (a cached generic plan made while the ledger was small would seq-scan it).
set plan_cache_mode = force_custom_plan
as $$
declare
  v_ceiling bigint := (p_options ->> 'ceiling')::bigint;
  v_cutoff timestamptz := (p_options ->> 'started_before')::timestamptz;
  v_limit integer := greatest(0, coalesce((p_options ->> 'recheck_limit')::integer, 500));
  v_jobs integer;
  v_found integer;
  v_agg jsonb;
  v_out jsonb;
begin
  if jsonb_typeof(p_batch) <> 'array' then
    raise exception 'p_batch must be a JSON array' using errcode = '22023';
  end if;
  if v_ceiling is null and exists (select 1 from jsonb_array_elements(p_batch) j where coalesce((j ->> 'final')::boolean, false)) then
    raise exception 'a complete pass needs a ceiling' using errcode = '22023';
  end if;
  if exists (
    select 1 from jsonb_array_elements(p_batch) j, jsonb_array_elements(coalesce(j -> 'executions', '[]'::jsonb)) e
     where coalesce(e ->> 'id', '') !~ '^[0-9]{1,18}$' or coalesce(e ->> 'status', '') = ''
  ) then
    raise exception 'every execution needs a numeric id and a status' using errcode = '22023';
  end if;

  -- The workflow rows first, in id order (as every writer of a ledger does): no deadlocks.
  select count(distinct (j ->> 'workflow_id')::uuid) into v_jobs from jsonb_array_elements(p_batch) j;
  select count(*) into v_found from (
    select 1 from public.mvp_workflows m
     where m.id in (select (j ->> 'workflow_id')::uuid from jsonb_array_elements(p_batch) j)
     order by m.id
       for update) l;
  if v_found <> v_jobs then
    raise exception 'workflow not found' using errcode = 'P0002';
  end if;

  with jobs as (
    select (j ->> 'workflow_id')::uuid as wf, coalesce(j -> 'executions', '[]'::jsonb) as ex
      from jsonb_array_elements(p_batch) j
  ),
  src_all as (
    select jb.wf,
           e ->> 'id' as n8n_id,
           (e ->> 'id')::bigint as seq,
           e ->> 'status' as status,
           e ->> 'mode' as mode,
           coalesce((e ->> 'finished')::boolean, false) as finished,
           (e ->> 'startedAt')::timestamptz as started_at,
           (e ->> 'stoppedAt')::timestamptz as stopped_at,
           e ->> 'workflowId' as n8n_workflow_id,
           ord
      from jobs jb, jsonb_array_elements(jb.ex) with ordinality as t(e, ord)
  ),
  src as (
    select distinct on (s.wf, s.seq) s.wf, s.n8n_id, s.seq, s.status, s.mode, s.finished,
           s.started_at, s.stopped_at, m.user_id, m.n8n_workflow_id as wf_n8n,
           case s.status
             when 'success' then 'success'
             when 'error' then 'failed'
             when 'crashed' then 'failed'
             when 'canceled' then 'canceled'
           end as cat
      from src_all s
      join public.mvp_workflows m on m.id = s.wf
     where s.n8n_workflow_id is null or s.n8n_workflow_id = m.n8n_workflow_id
     order by s.wf, s.seq, s.ord desc
  ),
  prev as (
    select x.workflow_id, x.n8n_execution_id, x.count_category
      from public.workflow_executions x
      join src on x.workflow_id = src.wf and x.n8n_execution_id = src.n8n_id
  ),
  up as (
    insert into public.workflow_executions as x
      (workflow_id, user_id, n8n_execution_id, n8n_execution_seq, n8n_workflow_id, status, mode,
       finished, started_at, stopped_at, count_category, created_at, updated_at)
    select s.wf, s.user_id, s.n8n_id, s.seq, s.wf_n8n, s.status, s.mode,
           s.finished, s.started_at, s.stopped_at, s.cat, p_synced_at, p_synced_at
      from src s
    on conflict (workflow_id, n8n_execution_id) do update
       set status = excluded.status,
           mode = coalesce(excluded.mode, x.mode),
           finished = excluded.finished,
           started_at = coalesce(excluded.started_at, x.started_at),
           stopped_at = coalesce(excluded.stopped_at, x.stopped_at),
           n8n_execution_seq = excluded.n8n_execution_seq,
           count_category = case
             when x.count_category is null and x.status in ('success', 'error', 'crashed', 'canceled')
               then null
             else excluded.count_category end,
           vanished_at = null,
           updated_at = excluded.updated_at
     where (x.status is distinct from excluded.status
            or x.finished is distinct from excluded.finished
            or x.stopped_at is distinct from excluded.stopped_at
            or x.vanished_at is not null)
       and not (x.status in ('success', 'error', 'crashed', 'canceled')
                and excluded.status not in ('success', 'error', 'crashed', 'canceled'))
    returning x.workflow_id, x.n8n_execution_id, x.n8n_execution_seq, x.count_category
  ),
  agg as (
    select u.workflow_id as wf,
           count(*) filter (where p.n8n_execution_id is null) as inserted,
           count(*) filter (where p.n8n_execution_id is not null) as updated,
           sum((u.count_category is not null)::int - (p.count_category is not null)::int) as d_count,
           sum((u.count_category is not distinct from 'success')::int - (p.count_category is not distinct from 'success')::int) as d_success,
           sum((u.count_category is not distinct from 'failed')::int - (p.count_category is not distinct from 'failed')::int) as d_failed,
           max(u.n8n_execution_seq) as max_seq
      from up u
      left join prev p on p.workflow_id = u.workflow_id and p.n8n_execution_id = u.n8n_execution_id
     group by u.workflow_id
  ),
  ignored as (
    select s.wf, count(*) as n
      from src_all s join public.mvp_workflows m on m.id = s.wf
     where s.n8n_workflow_id is not null and s.n8n_workflow_id <> m.n8n_workflow_id
     group by s.wf
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'wf', coalesce(a.wf, i.wf), 'inserted', coalesce(a.inserted, 0), 'updated', coalesce(a.updated, 0),
           'd_count', coalesce(a.d_count, 0), 'd_success', coalesce(a.d_success, 0), 'd_failed', coalesce(a.d_failed, 0),
           'max_seq', a.max_seq, 'ignored', coalesce(i.n, 0))), '[]'::jsonb)
    into v_agg
    from agg a full join ignored i on i.wf = a.wf;

  with jobs as (
    select (j ->> 'workflow_id')::uuid as wf, coalesce((j ->> 'final')::boolean, false) as final, ord
      from jsonb_array_elements(p_batch) with ordinality as t(j, ord)
  ),
  a as (
    select * from jsonb_to_recordset(v_agg) as r(wf uuid, inserted integer, updated integer, d_count bigint,
      d_success bigint, d_failed bigint, max_seq bigint, ignored integer)
  ),
  cur as (
    select jb.wf, jb.final, jb.ord, m.execution_floor_id as own_floor,
           case when m.execution_floor_id is null then null
                else greatest(m.execution_floor_id, f.floor_id) end as old_floor,
           coalesce(a.inserted, 0) as inserted, coalesce(a.updated, 0) as updated,
           coalesce(a.d_count, 0) as d_count, coalesce(a.d_success, 0) as d_success,
           coalesce(a.d_failed, 0) as d_failed, a.max_seq, coalesce(a.ignored, 0) as ignored
      from jobs jb
      join public.mvp_workflows m on m.id = jb.wf
      left join public.workflow_scan_floors f on f.workflow_id = m.id
      left join a on a.wf = jb.wf
  ),
  fl as (
    select c.*,
           case when not c.final then c.old_floor
                else greatest(
                  case when v_cutoff is null then v_ceiling
                       else least(v_ceiling, coalesce((
                         select max(x.n8n_execution_seq) from public.workflow_executions x
                          where x.workflow_id = c.wf and x.started_at < v_cutoff), 0)) end,
                  coalesce(c.old_floor, -1)) end as new_floor
      from cur c
  ),
  res as (
    select f.*,
           f.final and (f.old_floor is null or f.new_floor > f.old_floor) as advanced,
           (f.inserted + f.updated) > 0 as changed
      from fl f
  ),
  w as (
    update public.mvp_workflows m
       set execution_count = m.execution_count + r.d_count,
           successful_executions = m.successful_executions + r.d_success,
           failed_executions = m.failed_executions + r.d_failed,
           last_execution_at = coalesce(l.started_at, m.last_execution_at),
           last_execution_status = coalesce(l.status, m.last_execution_status),
           last_seen_execution_id = greatest(m.last_seen_execution_id, r.max_seq),
           execution_floor_id = case when r.advanced then r.new_floor else m.execution_floor_id end,
           last_sync_at = p_synced_at
      from res r
      left join lateral (
        select x.status, x.started_at from public.workflow_executions x
         where x.workflow_id = r.wf and x.n8n_execution_seq is not null
         order by x.n8n_execution_seq desc
         limit 1) l on true
     where m.id = r.wf and (r.changed or r.advanced)
    returning m.id
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'inserted', r.inserted,
           'updated', r.updated,
           'ignored', r.ignored,
           'vanished', 0,
           'delta', jsonb_build_object('execution_count', r.d_count, 'successful_executions', r.d_success,
                                       'failed_executions', r.d_failed),
           'floor', (case when r.advanced then r.new_floor else r.old_floor end)::text,
           'floor_advanced', r.advanced,
           'workflow_written', r.changed or r.advanced,
           'recheck', case when not r.final then '[]'::jsonb else coalesce((
             select jsonb_agg(o.n8n_execution_id) from (
               select x.n8n_execution_id from public.workflow_executions x
                where x.workflow_id = r.wf
                  and x.n8n_execution_seq <= (case when r.advanced then r.new_floor else r.old_floor end)
                  and x.status not in ('success', 'error', 'crashed', 'canceled')
                  and x.vanished_at is null
                order by random()
                limit v_limit) o), '[]'::jsonb) end
         ) order by r.ord), '[]'::jsonb)
    into v_out
    from res r;
  return v_out;
end
$$;

-- ---------------------------------------------------------------------------
-- raise_scan_floors: after a complete instance scan (the service's /sync/all), the stop point of
-- workflows that had nothing new, no active run and no open ledger row moves up to the scan's
-- ceiling, in workflow_scan_floors (see the table). Only rows whose own stop point is set; a
-- stop point never moves down. Returns how many rows changed.
create or replace function public.raise_scan_floors(
  p_workflow_ids uuid[],
  p_floor bigint
) returns integer
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_rows integer;
begin
  insert into public.workflow_scan_floors as f (workflow_id, floor_id, updated_at)
  select m.id, p_floor, now()
    from public.mvp_workflows m
   where m.id = any(p_workflow_ids)
     and m.execution_floor_id is not null
     and m.execution_floor_id < p_floor
  on conflict (workflow_id) do update
     set floor_id = excluded.floor_id, updated_at = excluded.updated_at
   where f.floor_id < excluded.floor_id;
  get diagnostics v_rows = row_count;
  return v_rows;
end
$$;

-- ---------------------------------------------------------------------------
-- mark_workflow_missing: drift, the workflow is gone from n8n (Supabase is the source of truth,
-- so the row stays and is redeployed on the next PATCH or POST /workflows/{id}/redeploy).
-- Only while the row still points at that n8n workflow (a concurrent redeploy that already
-- created a new one wins). Returns true when the row changed.
create or replace function public.mark_workflow_missing(
  p_workflow_id uuid,
  p_n8n_workflow_id text,
  p_error text,
  p_synced_at timestamptz default now()
) returns boolean
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_rows integer;
begin
  update public.mvp_workflows
     set status = 'missing_in_n8n', last_error = p_error, last_sync_at = p_synced_at
   where id = p_workflow_id
     and n8n_workflow_id = p_n8n_workflow_id
     and (status is distinct from 'missing_in_n8n' or last_error is distinct from p_error);
  get diagnostics v_rows = row_count;
  return v_rows > 0;
end
$$;

-- ---------------------------------------------------------------------------
-- record_sync_log: the one sync_logs row of a sync. p_user_id defaults to the caller
-- (auth.uid(); NULL for the service role), so a user token can only log for itself under RLS.
create or replace function public.record_sync_log(
  p_sync_type text,
  p_status text,
  p_duration_ms integer,
  p_workflows_synced integer default 0,
  p_workflows_failed integer default 0,
  p_executions_ingested integer default 0,
  p_error text default null,
  p_details jsonb default '{}'::jsonb,
  p_user_id uuid default null
) returns uuid
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_id uuid;
begin
  if coalesce(p_sync_type, '') = '' then
    raise exception 'sync_type is required' using errcode = '22023';
  end if;
  if p_status is null or p_status not in ('success', 'partial', 'failed') then
    raise exception 'status must be success, partial or failed' using errcode = '22023';
  end if;
  insert into public.sync_logs
    (user_id, sync_type, status, duration_ms, workflows_synced, workflows_failed,
     executions_ingested, error, details)
  values
    (coalesce(p_user_id, auth.uid()), p_sync_type, p_status, greatest(0, coalesce(p_duration_ms, 0)),
     greatest(0, coalesce(p_workflows_synced, 0)), greatest(0, coalesce(p_workflows_failed, 0)),
     greatest(0, coalesce(p_executions_ingested, 0)), p_error, coalesce(p_details, '{}'::jsonb))
  returning id into v_id;
  return v_id;
end
$$;

-- Callable by signed-in users (under RLS) and the service role; never by anon.
revoke all on function public.ingest_executions(uuid, jsonb, timestamptz, jsonb) from public, anon;
revoke all on function public.ingest_executions_batch(jsonb, timestamptz) from public, anon;
revoke all on function public.raise_scan_floors(uuid[], bigint) from public, anon, authenticated;
revoke all on function public.ingest_scan_batch(jsonb, timestamptz, jsonb) from public, anon, authenticated;
revoke all on function public.mark_workflow_missing(uuid, text, text, timestamptz) from public, anon;
revoke all on function public.record_sync_log(text, text, integer, integer, integer, integer, text, jsonb, uuid) from public, anon;
grant execute on function public.ingest_executions(uuid, jsonb, timestamptz, jsonb) to authenticated, service_role;
grant execute on function public.ingest_executions_batch(jsonb, timestamptz) to authenticated, service_role;
grant execute on function public.raise_scan_floors(uuid[], bigint) to service_role;
grant execute on function public.ingest_scan_batch(jsonb, timestamptz, jsonb) to service_role;
grant execute on function public.mark_workflow_missing(uuid, text, text, timestamptz) to authenticated, service_role;
grant execute on function public.record_sync_log(text, text, integer, integer, integer, integer, text, jsonb, uuid) to authenticated, service_role;
