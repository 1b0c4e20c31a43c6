-- SQL helpers for the ledger's two rules that the functions repeated inline (issue 10, step 4):
-- which execution statuses are final, and which count category a status contributes to. The
-- functions that spelled them out are redefined here, unchanged but for calling the helpers (each
-- from its newest definition: ingest_executions and ingest_scan_batch from 20250109000000,
-- purge_expired_data from 20250111000000, workflows_with_open_rows from 20250112000000,
-- live_tail_open_executions from 20250116000000). `create or replace` keeps their grants.
--
-- The helpers are plain SQL expressions, IMMUTABLE, with NO `set search_path`: Postgres inlines
-- such a function into the calling statement (a SET clause or plpgsql would prevent it), so a
-- call costs nothing per row and `not public.is_final(x.status)` becomes `x.status <> all (...)`
-- again at plan time, which the partial index workflow_executions_open_idx (20250109000000,
-- whose predicate is that list) still matches. Their bodies name no object, only pg_catalog's
-- operators, which are found before anything in the caller's search_path.
--
-- Inlining needs EXECUTE for the calling role: workflows_with_open_rows runs as `authenticated`
-- (a STABLE read under RLS), so is_final is granted to authenticated as the IMMUTABLE reads are;
-- count_category is used by the service's writes only.

-- The statuses n8n never changes again: a final row is not re-checked and never reverts.
create or replace function public.is_final(status text) returns boolean
language sql
immutable
parallel safe
security invoker
as $$ select status in ('success', 'error', 'crashed', 'canceled') $$;

-- What a row with this status contributes to its workflow's counts (mvp_workflows
-- execution_count, successful_executions, failed_executions): 'success' | 'failed' | 'canceled'
-- (execution_count only) | null (nothing: an open status).
create or replace function public.count_category(status text) returns text
language sql
immutable
parallel safe
security invoker
as $$
  select case status
           when 'success' then 'success'
           when 'error' then 'failed'
           when 'crashed' then 'failed'
           when 'canceled' then 'canceled'
         end
$$;

revoke all on function public.is_final(text), public.count_category(text) from public, anon, authenticated;
grant execute on function public.is_final(text), public.count_category(text) to service_role;
grant execute on function public.is_final(text) to authenticated;

-- ---------------------------------------------------------------------------
-- ingest_executions (options: see 20250109000000; the keys read here are the ones declared in
-- src/store/ingest-options.ts, checked by test/db/ingest-options.test.ts).
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
             public.count_category(status) as cat
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
               when x.count_category is null and public.is_final(x.status)
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
         and not (public.is_final(x.status)
                  and not public.is_final(excluded.status))
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
       and not public.is_final(x.status)
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
       and not public.is_final(x.status) and x.vanished_at is null
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
               where not public.is_final(r.status) and r.vanished_at is null
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
               and not public.is_final(x.status)
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
-- ingest_scan_batch (see 20250109000000).
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
           public.count_category(s.status) as cat
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
             when x.count_category is null and public.is_final(x.status)
               then null
             else excluded.count_category end,
           vanished_at = null,
           updated_at = excluded.updated_at
     where (x.status is distinct from excluded.status
            or x.finished is distinct from excluded.finished
            or x.stopped_at is distinct from excluded.stopped_at
            or x.vanished_at is not null)
       and not (public.is_final(x.status)
                and not public.is_final(excluded.status))
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
                  and not public.is_final(x.status)
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
-- purge_expired_data (see 20250111000000).
create or replace function public.purge_expired_data(
  p_sync_log_days integer,
  p_execution_days integer,
  p_dry_run boolean default false
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_log_cutoff timestamptz := now() - make_interval(days => greatest(1, p_sync_log_days));
  v_exec_cutoff timestamptz := now() - make_interval(days => greatest(1, p_execution_days));
  v_logs bigint;
  v_execs bigint;
  v_keys bigint;
begin
  if p_dry_run then
    select count(*) into v_logs from public.sync_logs where created_at < v_log_cutoff;
    select count(*) into v_execs from public.workflow_executions e
      join public.mvp_workflows w on w.id = e.workflow_id
     where coalesce(e.stopped_at, e.started_at, e.created_at) < v_exec_cutoff
       and (public.is_final(e.status) or e.vanished_at is not null)
       and e.n8n_execution_seq <= w.execution_floor_id;
    select count(*) into v_keys from public.idempotency_keys where expires_at <= now();
  else
    delete from public.sync_logs where created_at < v_log_cutoff;
    get diagnostics v_logs = row_count;
    -- Take the workflow row locks first, as ingest does, so a sync in flight cannot re-read a
    -- row between its deletion here and the floor check below.
    perform 1 from public.mvp_workflows w
     where exists (select 1 from public.workflow_executions e
                    where e.workflow_id = w.id and coalesce(e.stopped_at, e.started_at, e.created_at) < v_exec_cutoff)
     order by w.id
       for update;
    delete from public.workflow_executions e
     using public.mvp_workflows w
     where w.id = e.workflow_id
       and coalesce(e.stopped_at, e.started_at, e.created_at) < v_exec_cutoff
       and (public.is_final(e.status) or e.vanished_at is not null)
       and e.n8n_execution_seq <= w.execution_floor_id;
    get diagnostics v_execs = row_count;
    delete from public.idempotency_keys where expires_at <= now();
    get diagnostics v_keys = row_count;
  end if;
  return jsonb_build_object(
    'sync_logs', v_logs,
    'executions', v_execs,
    'idempotency_keys', v_keys,
    'sync_log_cutoff', v_log_cutoff,
    'execution_cutoff', v_exec_cutoff
  );
end
$$;

-- ---------------------------------------------------------------------------
-- workflows_with_open_rows (see 20250112000000).
create or replace function public.workflows_with_open_rows(p_workflow_ids uuid[])
returns setof uuid
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select distinct x.workflow_id from public.workflow_executions x
   where x.workflow_id = any(p_workflow_ids)
     and not public.is_final(x.status) and x.vanished_at is null
$$;

-- ---------------------------------------------------------------------------
-- live_tail_open_executions (see 20250116000000).
create or replace function public.live_tail_open_executions(p_limit integer)
returns table (n8n_execution_id text, n8n_workflow_id text, status text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select x.n8n_execution_id, x.n8n_workflow_id, x.status
    from public.workflow_executions x
   where not public.is_final(x.status) and x.vanished_at is null
   order by x.n8n_execution_seq
   limit greatest(0, coalesce(p_limit, 10000))
$$;

create or replace function public.workflow_sync_schema_version() returns text
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$ select '20250118000000'::text $$;
