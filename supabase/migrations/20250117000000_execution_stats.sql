-- Analytics from the ledger (GET /workflows/{id}/stats, GET /stats).
--
-- A year of a busy workflow is ~500k ledger rows; aggregating them per request (and sorting them
-- for a percentile) takes hundreds of milliseconds. Instead the ledger keeps a rollup up to date
-- in the same statement that writes it: per workflow, per UTC hour and UTC day, per status and per
-- duration bin, the number of executions and the sum of their durations. A year answers from
-- ~365 × (statuses × bins) day rows, in milliseconds.
--
-- Durations are stopped_at - started_at (rows with both set, stopped_at not before started_at).
-- Bins are logarithmic with a 10 % step (bin = floor(ln(ms + 1) / ln(1.1)), 0 … ~200 for a day),
-- so percentiles are estimated within 10 % (the service reports a bin's upper bound); averages and
-- counts are exact. An execution is placed in the bucket of its started_at (created_at when n8n
-- gave none).
--
-- The rollup is written only by the ledger's triggers (security definer); a user reads their own
-- rows under RLS. Ledger rows removed by retention (purge_expired_data) stay counted here, as the
-- workflow's counts do; deleting a workflow deletes its rollup (foreign key).

create table if not exists public.workflow_execution_rollups (
  workflow_id uuid not null references public.mvp_workflows (id) on delete cascade,
  user_id uuid not null,
  granularity text not null check (granularity in ('hour', 'day')),
  bucket_start timestamptz not null,
  status text not null,
  -- -1: no duration (open, or n8n gave no start/stop time)
  duration_bin smallint not null,
  count bigint not null default 0,
  duration_sum_ms double precision not null default 0,
  primary key (workflow_id, granularity, bucket_start, status, duration_bin)
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

-- The rollup key of a ledger row (immutable helpers, inlined by the planner).
create or replace function public.workflow_execution_duration_bin(p_started timestamptz, p_stopped timestamptz)
returns smallint
language sql
immutable
parallel safe
set search_path = public, pg_temp
as $$
  select case
    when p_started is null or p_stopped is null or p_stopped < p_started then -1
    else floor(ln(extract(epoch from (p_stopped - p_started)) * 1000 + 1) / ln(1.1))::smallint
  end
$$;

-- Statement-level: one grouped upsert per ledger statement (an ingest page is one statement).
-- Updates add the new version of each row and subtract the old one; unchanged keys net to zero
-- and are skipped. Keys are written in a fixed order, so concurrent ingests cannot deadlock here.
create or replace function public.workflow_execution_rollup_apply()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    insert into public.workflow_execution_rollups as r
      (workflow_id, user_id, granularity, bucket_start, status, duration_bin, count, duration_sum_ms)
    select d.workflow_id, d.user_id, g.granularity,
           date_trunc(g.granularity, d.ts, 'UTC'), d.status, d.bin, count(*), coalesce(sum(d.ms), 0)
      from (select n.workflow_id, n.user_id, n.status,
                   coalesce(n.started_at, n.created_at) as ts,
                   public.workflow_execution_duration_bin(n.started_at, n.stopped_at) as bin,
                   case when n.stopped_at >= n.started_at then extract(epoch from (n.stopped_at - n.started_at)) * 1000 end as ms
              from new_rows n) d
     cross join (values ('hour'), ('day')) as g (granularity)
     group by 1, 2, 3, 4, 5, 6
     order by 1, 3, 4, 5, 6
    on conflict (workflow_id, granularity, bucket_start, status, duration_bin) do update
       set count = r.count + excluded.count,
           duration_sum_ms = r.duration_sum_ms + excluded.duration_sum_ms;
  elsif tg_op = 'UPDATE' then
    insert into public.workflow_execution_rollups as r
      (workflow_id, user_id, granularity, bucket_start, status, duration_bin, count, duration_sum_ms)
    select d.workflow_id, d.user_id, g.granularity,
           date_trunc(g.granularity, d.ts, 'UTC'), d.status, d.bin, sum(d.sign), coalesce(sum(d.sign * d.ms), 0)
      from (select n.workflow_id, n.user_id, n.status, 1 as sign,
                   coalesce(n.started_at, n.created_at) as ts,
                   public.workflow_execution_duration_bin(n.started_at, n.stopped_at) as bin,
                   case when n.stopped_at >= n.started_at then extract(epoch from (n.stopped_at - n.started_at)) * 1000 end as ms
              from new_rows n
            union all
            select o.workflow_id, o.user_id, o.status, -1 as sign,
                   coalesce(o.started_at, o.created_at) as ts,
                   public.workflow_execution_duration_bin(o.started_at, o.stopped_at) as bin,
                   case when o.stopped_at >= o.started_at then extract(epoch from (o.stopped_at - o.started_at)) * 1000 end as ms
              from old_rows o) d
     cross join (values ('hour'), ('day')) as g (granularity)
     group by 1, 2, 3, 4, 5, 6
    having sum(d.sign) <> 0 or coalesce(sum(d.sign * d.ms), 0) <> 0
     order by 1, 3, 4, 5, 6
    on conflict (workflow_id, granularity, bucket_start, status, duration_bin) do update
       set count = r.count + excluded.count,
           duration_sum_ms = r.duration_sum_ms + excluded.duration_sum_ms;
  end if;
  return null;
end
$$;

drop trigger if exists workflow_executions_rollup_insert on public.workflow_executions;
create trigger workflow_executions_rollup_insert after insert on public.workflow_executions
  referencing new table as new_rows
  for each statement execute function public.workflow_execution_rollup_apply();
drop trigger if exists workflow_executions_rollup_update on public.workflow_executions;
create trigger workflow_executions_rollup_update after update on public.workflow_executions
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.workflow_execution_rollup_apply();

-- The ledger as it is now.
insert into public.workflow_execution_rollups
  (workflow_id, user_id, granularity, bucket_start, status, duration_bin, count, duration_sum_ms)
select d.workflow_id, d.user_id, g.granularity,
       date_trunc(g.granularity, d.ts, 'UTC'), d.status, d.bin, count(*), coalesce(sum(d.ms), 0)
  from (select x.workflow_id, x.user_id, x.status,
               coalesce(x.started_at, x.created_at) as ts,
               public.workflow_execution_duration_bin(x.started_at, x.stopped_at) as bin,
               case when x.stopped_at >= x.started_at then extract(epoch from (x.stopped_at - x.started_at)) * 1000 end as ms
          from public.workflow_executions x) d
 cross join (values ('hour'), ('day')) as g (granularity)
 group by 1, 2, 3, 4, 5, 6
on conflict do nothing;

-- workflow_execution_stats: one row per non-empty bucket in [p_since, p_until) and one row for the
-- whole window (bucket_start null): executions per status, durations (count, average) and the
-- duration bins of the 50th and 95th percentiles (nearest rank). p_workflow_id null: all of the
-- caller's workflows (RLS). A function because PostgREST's aggregates are off by default.
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
    select x.bucket_start, x.status, x.duration_bin, x.count, x.duration_sum_ms
      from public.workflow_execution_rollups x
     where x.granularity = p_bucket
       and x.bucket_start >= p_since and x.bucket_start < p_until
       and (p_workflow_id is null or x.workflow_id = p_workflow_id)
       and x.count <> 0
  ),
  -- grouping sets: per bucket, and the whole window (b is null there)
  by_status as (
    select r.bucket_start as b, r.status, sum(r.count) as c
      from r group by grouping sets ((r.bucket_start, r.status), (r.status))
  ),
  counts as (
    select s.b, jsonb_object_agg(s.status, s.c) as counts
      from by_status s where s.c <> 0 group by s.b
  ),
  by_bin as (
    select r.bucket_start as b, grouping(r.bucket_start) as whole, r.duration_bin as bin, sum(r.count) as c, sum(r.duration_sum_ms) as ms
      from r where r.duration_bin >= 0
     group by grouping sets ((r.bucket_start, r.duration_bin), (r.duration_bin))
  ),
  cum as (
    select k.b, k.whole, k.bin, k.c, k.ms,
           sum(k.c) over (partition by k.whole, k.b order by k.bin) as upto,
           sum(k.c) over (partition by k.whole, k.b) as n
      from by_bin k where k.c > 0
  ),
  durations as (
    select u.b, max(u.n)::bigint as n, sum(u.ms) / max(u.n) as avg_ms,
           min(u.bin) filter (where u.upto >= ceil(0.50 * u.n))::int as p50,
           min(u.bin) filter (where u.upto >= ceil(0.95 * u.n))::int as p95
      from cum u group by u.whole, u.b
  )
  select c.b, c.counts, coalesce(d.n, 0), d.avg_ms, d.p50, d.p95
    from counts c
    left join durations d on d.b is not distinct from c.b
   order by c.b nulls first
$$;

revoke all on function public.workflow_execution_duration_bin(timestamptz, timestamptz) from public, anon, authenticated;
revoke all on function public.workflow_execution_rollup_apply() from public, anon, authenticated, service_role;
revoke all on function public.workflow_execution_stats(text, timestamptz, timestamptz, uuid) from public, anon, authenticated;
grant execute on function public.workflow_execution_duration_bin(timestamptz, timestamptz) to service_role;
grant execute on function public.workflow_execution_stats(text, timestamptz, timestamptz, uuid) to authenticated, service_role;

create or replace function public.workflow_sync_schema_version() returns text
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$ select '20250117000000'::text $$;
