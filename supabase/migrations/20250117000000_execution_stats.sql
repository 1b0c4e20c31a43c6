-- Analytics from the ledger (GET /workflows/{id}/stats, GET /stats).
--
-- A year of a busy workflow is ~500k ledger rows; aggregating them per request (and sorting them
-- for a percentile) takes seconds. Instead the ledger keeps a rollup up to date in the statement
-- that writes it: ONE row per workflow and UTC hour, and per workflow and UTC day, with the
-- executions per status, the number and sum of durations, a histogram of durations and the
-- histogram's median and 95th-percentile bins. A year of day buckets is 365 rows.
--
-- Durations are stopped_at - started_at (rows with both set, stopped_at not before started_at).
-- The histogram has 200 logarithmic bins with a 10 % step (bin = floor(ln(ms + 1) / ln(1.1)),
-- the last one open-ended from ~52 h), so percentiles are estimated within 10 % (the service
-- reports a bin's upper bound); counts and averages are exact. An execution is placed in the
-- bucket of its started_at (created_at when n8n gave none).
--
-- The rollup is written only by the ledger's triggers (security definer); a user reads their own
-- rows under RLS. Ledger rows removed by retention (purge_expired_data) stay counted here, as the
-- workflow's counts do; deleting a workflow deletes its rollup (foreign key).

create table if not exists public.workflow_execution_rollups (
  workflow_id uuid not null references public.mvp_workflows (id) on delete cascade,
  user_id uuid not null,
  granularity text not null check (granularity in ('hour', 'day')),
  bucket_start timestamptz not null,
  n_success bigint not null default 0,
  n_error bigint not null default 0,
  n_crashed bigint not null default 0,
  n_canceled bigint not null default 0,
  n_waiting bigint not null default 0,
  n_running bigint not null default 0,
  n_new bigint not null default 0,
  -- any other status n8n reports
  n_unknown bigint not null default 0,
  duration_count bigint not null default 0,
  duration_sum_ms double precision not null default 0,
  duration_hist bigint[] not null,
  p50_bin integer,
  p95_bin integer,
  primary key (workflow_id, granularity, bucket_start)
);
-- GET /stats: all of a user's workflows (RLS filters by user_id).
create index if not exists workflow_execution_rollups_user_idx
  on public.workflow_execution_rollups (user_id, granularity, bucket_start);

alter table public.workflow_execution_rollups enable row level security;
drop policy if exists "own execution rollups: select" on public.workflow_execution_rollups;
create policy "own execution rollups: select" on public.workflow_execution_rollups for select to authenticated
  using ((select auth.uid()) = user_id);
revoke all on public.workflow_execution_rollups from public, anon, authenticated;
grant select on public.workflow_execution_rollups to authenticated;
grant all on public.workflow_execution_rollups to service_role;

-- Helpers (immutable, no table access; plpgsql: loops over 200 bins with cached plans are
-- faster than SQL functions over unnest, which the planner cannot inline here).
-- Element-wise sum of two histograms. Strict: the aggregate below takes a group's first histogram
-- as it is, so a bucket of one workflow costs no addition.
create or replace function public.workflow_execution_hist_add(a bigint[], b bigint[])
returns bigint[]
language plpgsql
immutable
strict
parallel safe
set search_path = public, pg_temp
as $$
declare
  r bigint[] := a;
begin
  for i in 1 .. coalesce(array_length(b, 1), 0) loop
    r[i] := coalesce(r[i], 0) + b[i];
  end loop;
  return r;
end
$$;

-- The bin (0-based) holding the nearest-rank p-quantile of a histogram; null when it is empty.
create or replace function public.workflow_execution_hist_rank(h bigint[], p double precision)
returns integer
language plpgsql
immutable
parallel safe
set search_path = public, pg_temp
as $$
declare
  n bigint := 0;
  acc bigint := 0;
  target double precision;
begin
  for i in 1 .. coalesce(array_length(h, 1), 0) loop
    n := n + h[i];
  end loop;
  if n <= 0 then
    return null;
  end if;
  target := ceil(p * n);
  for i in 1 .. array_length(h, 1) loop
    acc := acc + h[i];
    if acc >= target then
      return i - 1;
    end if;
  end loop;
  return null;
end
$$;

-- Sum of histograms over rows (GET /stats: several workflows in one bucket).
drop aggregate if exists public.workflow_execution_hist_sum(bigint[]);
create aggregate public.workflow_execution_hist_sum(bigint[]) (
  sfunc = public.workflow_execution_hist_add,
  stype = bigint[]
);

-- Statement-level: one grouped upsert per ledger statement (an ingest page is one statement).
-- Updates add the new version of each row and subtract the old one; unchanged rows net to zero
-- and are skipped. Keys are written in a fixed order, so concurrent writers cannot deadlock here.
-- One function for both triggers: the statement is built for the transition tables the trigger
-- has (an INSERT trigger has no old_rows to name).
create or replace function public.workflow_execution_rollup_apply()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $fn$
declare
  v_rows text := 'select n.workflow_id, n.user_id, n.status, n.started_at, n.stopped_at, coalesce(n.started_at, n.created_at) as ts, 1 as sign from new_rows n';
begin
  if tg_op = 'UPDATE' then
    v_rows := v_rows || ' union all select o.workflow_id, o.user_id, o.status, o.started_at, o.stopped_at, coalesce(o.started_at, o.created_at) as ts, -1 as sign from old_rows o';
  end if;
  execute format($sql$
  with rows as (%s),
  d as (
    select r.workflow_id, r.user_id, g.granularity, to_timestamp(floor(extract(epoch from r.ts) / g.step) * g.step) as bucket_start,
           r.status, r.sign, case when r.started_at is null or r.stopped_at is null or r.stopped_at < r.started_at then -1 else least(199, floor(ln(extract(epoch from (r.stopped_at - r.started_at)) * 1000 + 1) / ln(1.1))::integer) end as bin,
           case when r.stopped_at >= r.started_at then extract(epoch from (r.stopped_at - r.started_at)) * 1000 end as ms
      from rows r cross join (values ('hour', 3600), ('day', 86400)) as g (granularity, step)
  ),
  per_bin as (
    select d.workflow_id, d.granularity, d.bucket_start, d.bin, sum(d.sign) as c
      from d where d.bin >= 0 group by 1, 2, 3, 4
  ),
  agg as (
    select d.workflow_id, (array_agg(d.user_id))[1] as user_id, d.granularity, d.bucket_start,
           coalesce(sum(d.sign) filter (where d.status = 'success'), 0) as n_success,
           coalesce(sum(d.sign) filter (where d.status = 'error'), 0) as n_error,
           coalesce(sum(d.sign) filter (where d.status = 'crashed'), 0) as n_crashed,
           coalesce(sum(d.sign) filter (where d.status = 'canceled'), 0) as n_canceled,
           coalesce(sum(d.sign) filter (where d.status = 'waiting'), 0) as n_waiting,
           coalesce(sum(d.sign) filter (where d.status = 'running'), 0) as n_running,
           coalesce(sum(d.sign) filter (where d.status = 'new'), 0) as n_new,
           coalesce(sum(d.sign) filter (where d.status not in ('success', 'error', 'crashed', 'canceled', 'waiting', 'running', 'new')), 0) as n_unknown,
           coalesce(sum(d.sign) filter (where d.bin >= 0), 0) as duration_count,
           coalesce(sum(d.sign * d.ms), 0) as duration_sum_ms
      from d group by d.workflow_id, d.granularity, d.bucket_start
  ),
  hist as (
    select k.workflow_id, k.granularity, k.bucket_start, array_agg(coalesce(b.c, 0) order by s.i) as duration_hist
      from (select distinct p.workflow_id, p.granularity, p.bucket_start from per_bin p where p.c <> 0) k
     cross join generate_series(0, 199) as s (i)
      left join per_bin b on b.workflow_id = k.workflow_id and b.granularity = k.granularity
                         and b.bucket_start = k.bucket_start and b.bin = s.i
     group by 1, 2, 3
  ),
  delta as (
    select a.*, coalesce(h.duration_hist, array_fill(0::bigint, array[200])) as duration_hist,
           h.duration_hist is not null as hist_changed
      from agg a
      left join hist h on h.workflow_id = a.workflow_id and h.granularity = a.granularity and h.bucket_start = a.bucket_start
  )
  insert into public.workflow_execution_rollups as r
    (workflow_id, user_id, granularity, bucket_start, n_success, n_error, n_crashed, n_canceled, n_waiting,
     n_running, n_new, n_unknown, duration_count, duration_sum_ms, duration_hist, p50_bin, p95_bin)
  select x.workflow_id, x.user_id, x.granularity, x.bucket_start, x.n_success, x.n_error, x.n_crashed, x.n_canceled,
         x.n_waiting, x.n_running, x.n_new, x.n_unknown, x.duration_count, x.duration_sum_ms, x.duration_hist,
         public.workflow_execution_hist_rank(x.duration_hist, 0.5), public.workflow_execution_hist_rank(x.duration_hist, 0.95)
    from delta x
   where x.hist_changed or x.n_success <> 0 or x.n_error <> 0 or x.n_crashed <> 0 or x.n_canceled <> 0 or x.n_waiting <> 0
      or x.n_running <> 0 or x.n_new <> 0 or x.n_unknown <> 0 or x.duration_count <> 0 or x.duration_sum_ms <> 0
   order by x.workflow_id, x.granularity, x.bucket_start
  on conflict (workflow_id, granularity, bucket_start) do update
     set n_success = r.n_success + excluded.n_success,
         n_error = r.n_error + excluded.n_error,
         n_crashed = r.n_crashed + excluded.n_crashed,
         n_canceled = r.n_canceled + excluded.n_canceled,
         n_waiting = r.n_waiting + excluded.n_waiting,
         n_running = r.n_running + excluded.n_running,
         n_new = r.n_new + excluded.n_new,
         n_unknown = r.n_unknown + excluded.n_unknown,
         duration_count = r.duration_count + excluded.duration_count,
         duration_sum_ms = r.duration_sum_ms + excluded.duration_sum_ms,
         duration_hist = public.workflow_execution_hist_add(r.duration_hist, excluded.duration_hist),
         p50_bin = public.workflow_execution_hist_rank(public.workflow_execution_hist_add(r.duration_hist, excluded.duration_hist), 0.5),
         p95_bin = public.workflow_execution_hist_rank(public.workflow_execution_hist_add(r.duration_hist, excluded.duration_hist), 0.95)
  $sql$, v_rows);
  return null;
end
$fn$;

drop trigger if exists workflow_executions_rollup_insert on public.workflow_executions;
create trigger workflow_executions_rollup_insert after insert on public.workflow_executions
  referencing new table as new_rows
  for each statement execute function public.workflow_execution_rollup_apply();
drop trigger if exists workflow_executions_rollup_update on public.workflow_executions;
create trigger workflow_executions_rollup_update after update on public.workflow_executions
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.workflow_execution_rollup_apply();

-- The ledger as it is now: the trigger's grouping, as one insert.
with d as (
  select x.workflow_id, x.user_id, g.granularity, to_timestamp(floor(extract(epoch from coalesce(x.started_at, x.created_at)) / g.step) * g.step) as bucket_start,
         x.status, case when x.started_at is null or x.stopped_at is null or x.stopped_at < x.started_at then -1 else least(199, floor(ln(extract(epoch from (x.stopped_at - x.started_at)) * 1000 + 1) / ln(1.1))::integer) end as bin,
         case when x.stopped_at >= x.started_at then extract(epoch from (x.stopped_at - x.started_at)) * 1000 end as ms
    from public.workflow_executions x cross join (values ('hour', 3600), ('day', 86400)) as g (granularity, step)
),
per_bin as (
  select d.workflow_id, d.granularity, d.bucket_start, d.bin, count(*) as c from d where d.bin >= 0 group by 1, 2, 3, 4
),
agg as (
  select d.workflow_id, (array_agg(d.user_id))[1] as user_id, d.granularity, d.bucket_start,
         count(*) filter (where d.status = 'success') as n_success,
         count(*) filter (where d.status = 'error') as n_error,
         count(*) filter (where d.status = 'crashed') as n_crashed,
         count(*) filter (where d.status = 'canceled') as n_canceled,
         count(*) filter (where d.status = 'waiting') as n_waiting,
         count(*) filter (where d.status = 'running') as n_running,
         count(*) filter (where d.status = 'new') as n_new,
         count(*) filter (where d.status not in ('success', 'error', 'crashed', 'canceled', 'waiting', 'running', 'new')) as n_unknown,
         count(*) filter (where d.bin >= 0) as duration_count,
         coalesce(sum(d.ms), 0) as duration_sum_ms
    from d group by d.workflow_id, d.granularity, d.bucket_start
),
hist as (
  select k.workflow_id, k.granularity, k.bucket_start, array_agg(coalesce(b.c, 0) order by s.i) as duration_hist
    from (select distinct p.workflow_id, p.granularity, p.bucket_start from per_bin p) k
   cross join generate_series(0, 199) as s (i)
    left join per_bin b on b.workflow_id = k.workflow_id and b.granularity = k.granularity
                       and b.bucket_start = k.bucket_start and b.bin = s.i
   group by 1, 2, 3
),
full_hist as (
  select a.*, coalesce(h.duration_hist, array_fill(0::bigint, array[200])) as duration_hist
    from agg a
    left join hist h on h.workflow_id = a.workflow_id and h.granularity = a.granularity and h.bucket_start = a.bucket_start
)
insert into public.workflow_execution_rollups
  (workflow_id, user_id, granularity, bucket_start, n_success, n_error, n_crashed, n_canceled, n_waiting,
   n_running, n_new, n_unknown, duration_count, duration_sum_ms, duration_hist, p50_bin, p95_bin)
select f.workflow_id, f.user_id, f.granularity, f.bucket_start, f.n_success, f.n_error, f.n_crashed, f.n_canceled,
       f.n_waiting, f.n_running, f.n_new, f.n_unknown, f.duration_count, f.duration_sum_ms, f.duration_hist,
       public.workflow_execution_hist_rank(f.duration_hist, 0.5), public.workflow_execution_hist_rank(f.duration_hist, 0.95)
  from full_hist f
on conflict do nothing;

-- workflow_execution_stats: one row per non-empty bucket in [p_since, p_until) and one row for the
-- whole window (bucket_start null; no percentiles there: they would need every bucket's
-- histogram): executions per status, durations (count, average) and the duration bins of the
-- 50th and 95th percentiles (nearest rank). p_workflow_id null: all of the caller's workflows (RLS),
-- whose histograms are summed per bucket. A function because PostgREST's aggregates are off by default.
create or replace function public.workflow_execution_stats(
  p_bucket text,
  p_since timestamptz,
  p_until timestamptz,
  p_workflow_id uuid default null
) returns table (bucket_start timestamptz, counts jsonb, duration_count bigint, avg_duration_ms double precision, p50_bin integer, p95_bin integer)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  with r as (
    select x.*
      from public.workflow_execution_rollups x
     where x.granularity = p_bucket
       and x.bucket_start >= p_since and x.bucket_start < p_until
       and (p_workflow_id is null or x.workflow_id = p_workflow_id)
  ),
  b as (
    select r.bucket_start,
           sum(r.n_success) as s, sum(r.n_error) as e, sum(r.n_crashed) as c, sum(r.n_canceled) as k,
           sum(r.n_waiting) as w, sum(r.n_running) as u, sum(r.n_new) as n, sum(r.n_unknown) as x,
           sum(r.duration_count) as dc, sum(r.duration_sum_ms) as ds,
           case when count(*) = 1 then min(r.p50_bin) else public.workflow_execution_hist_rank(public.workflow_execution_hist_sum(r.duration_hist), 0.5) end as p50,
           case when count(*) = 1 then min(r.p95_bin) else public.workflow_execution_hist_rank(public.workflow_execution_hist_sum(r.duration_hist), 0.95) end as p95
      from r
     group by r.bucket_start
  ),
  t as (
    select null::timestamptz as bucket_start, sum(b.s) as s, sum(b.e) as e, sum(b.c) as c, sum(b.k) as k, sum(b.w) as w,
           sum(b.u) as u, sum(b.n) as n, sum(b.x) as x, sum(b.dc) as dc, sum(b.ds) as ds, null::integer as p50, null::integer as p95
      from b
  )
  select z.bucket_start,
         jsonb_build_object('success', z.s, 'error', z.e, 'crashed', z.c, 'canceled', z.k, 'waiting', z.w, 'running', z.u, 'new', z.n, 'unknown', z.x),
         coalesce(z.dc, 0)::bigint,
         case when z.dc > 0 then z.ds / z.dc end,
         z.p50, z.p95
    from (select * from t where t.s is not null union all select * from b) z
   where z.s + z.e + z.c + z.k + z.w + z.u + z.n + z.x > 0
   order by z.bucket_start nulls first
$$;

revoke all on function public.workflow_execution_hist_add(bigint[], bigint[]) from public, anon;
revoke all on function public.workflow_execution_hist_rank(bigint[], double precision) from public, anon;
revoke all on function public.workflow_execution_hist_sum(bigint[]) from public, anon;
revoke all on function public.workflow_execution_rollup_apply() from public, anon, authenticated, service_role;
revoke all on function public.workflow_execution_stats(text, timestamptz, timestamptz, uuid) from public, anon, authenticated;
-- immutable arithmetic on arrays, used by workflow_execution_stats as the caller
grant execute on function public.workflow_execution_hist_add(bigint[], bigint[]) to authenticated, service_role;
grant execute on function public.workflow_execution_hist_rank(bigint[], double precision) to authenticated, service_role;
grant execute on function public.workflow_execution_hist_sum(bigint[]) to authenticated, service_role;
grant execute on function public.workflow_execution_stats(text, timestamptz, timestamptz, uuid) to authenticated, service_role;

create or replace function public.workflow_sync_schema_version() returns text
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$ select '20250117000000'::text $$;
