-- The live tail (src/services/live-tail.ts): one replica at a time reads the newest executions
-- of n8n's instance-wide list and ingests them through ingest_executions. This file holds its
-- state and its fenced write.
--
-- LEADERSHIP AND FENCING. The leader is the replica holding a lock (a session advisory lock in
-- Postgres mode, the `service:live_tail` lease in Supabase mode). On taking it, the leader calls
-- live_tail_claim, which bumps `epoch`; every write of the tail (live_tail_ingest) names the epoch
-- it was given and fails (`fenced`) if another replica has claimed since. A leader cut off from the
-- database by a partition can therefore not write after its successor took over, even if it still
-- believes it leads: the check runs in the write's own transaction, under the state row's lock,
-- which also serialises the claim with any write in flight.
--
-- Service only (trust model): the table and the functions are revoked from public, anon and
-- authenticated; service_role alone may use them.

create table if not exists public.live_tail_state (
  name text primary key default 'live',
  -- fencing token: bumped by every claim
  epoch bigint not null default 0,
  holder text,
  claimed_at timestamptz,
  -- every execution with an id <= frontier is final and in the ledger, gone, or an open ledger
  -- row the tail re-checks (null: no tail has run yet)
  frontier bigint,
  -- the first full sync (backfill) of this deployment finished
  backfilled boolean not null default false,
  -- when the leader last ran the scheduled cleanup
  cleanup_at timestamptz,
  updated_at timestamptz not null default now()
);

alter table public.live_tail_state enable row level security;
revoke all on public.live_tail_state from public, anon, authenticated;
grant all on public.live_tail_state to service_role;

-- live_tail_claim: a new leader's fencing token. Call only while holding the tail's lock.
-- Returns {epoch, frontier, backfilled, cleanup_at}.
create or replace function public.live_tail_claim(p_holder text) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  s public.live_tail_state;
begin
  if coalesce(p_holder, '') = '' then
    raise exception 'a claim needs a holder' using errcode = 'P0001', hint = 'workflow_sync:validation_failed';
  end if;
  insert into public.live_tail_state as l (name, epoch, holder, claimed_at, updated_at)
    values ('live', 1, p_holder, clock_timestamp(), clock_timestamp())
  on conflict (name) do update
     set epoch = l.epoch + 1, holder = excluded.holder, claimed_at = excluded.claimed_at, updated_at = excluded.updated_at
  returning * into s;
  return jsonb_build_object('epoch', s.epoch::text, 'frontier', s.frontier::text, 'backfilled', s.backfilled, 'cleanup_at', s.cleanup_at);
end
$$;

-- live_tail_ingest: one tick's writes, fenced by p_epoch, in one transaction.
-- p_items: n8n execution list items (as ingest_executions takes them, with "workflowId"); each is
--   written to the row whose n8n_workflow_id is its workflowId (items of n8n workflows no row owns
--   are ignored and counted in "ignored"), through ingest_executions: the same ledger rules as a
--   sync (exact counts, a final status never reverts), without moving any stop point.
-- p_vanished: [{"workflowId", "id"}] open executions n8n answered 404 for.
-- p_state: {"frontier": "123", "backfilled": true, "cleanup_at": ts} (each optional): the tail's
--   state moves with the writes it describes. A frontier never moves down.
-- An epoch that is not the current one raises P0001 `fenced` (hint workflow_sync:conflict) and
-- writes nothing. With no items, it only checks the epoch (leaders call it to confirm they lead).
-- Returns {inserted, updated, ignored, workflows_written, owned: [n8n workflow ids a row owns],
--   frontier, backfilled, cleanup_at}.
create or replace function public.live_tail_ingest(
  p_epoch bigint,
  p_items jsonb,
  p_vanished jsonb,
  p_synced_at timestamptz,
  p_state jsonb
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  s public.live_tail_state;
  v_items jsonb := coalesce(p_items, '[]'::jsonb);
  v_vanished jsonb := coalesce(p_vanished, '[]'::jsonb);
  v_state jsonb := coalesce(p_state, '{}'::jsonb);
  v_inserted integer := 0;
  v_updated integer := 0;
  v_written integer := 0;
  v_matched integer := 0;
  v_owned jsonb := '[]'::jsonb;
  r record;
  v_res jsonb;
begin
  if jsonb_typeof(v_items) <> 'array' or jsonb_typeof(v_vanished) <> 'array' then
    raise exception 'p_items and p_vanished must be JSON arrays' using errcode = '22023';
  end if;
  select * into s from public.live_tail_state where name = 'live' for update;
  if not found or s.epoch <> p_epoch then
    raise exception 'fenced: another replica leads the live tail' using errcode = 'P0001', hint = 'workflow_sync:conflict';
  end if;

  if jsonb_array_length(v_items) > 0 or jsonb_array_length(v_vanished) > 0 then
    -- Rows locked in id order (as ingest_executions_batch does): no deadlock with a sync.
    perform 1 from public.mvp_workflows m
     where m.n8n_workflow_id in (select e ->> 'workflowId' from jsonb_array_elements(v_items) e
                                 union select e ->> 'workflowId' from jsonb_array_elements(v_vanished) e)
     order by m.id
       for update;
    for r in
      select m.id, m.n8n_workflow_id,
             coalesce((select jsonb_agg(e order by ord) from jsonb_array_elements(v_items) with ordinality as t(e, ord)
                        where e ->> 'workflowId' = m.n8n_workflow_id), '[]'::jsonb) as items,
             coalesce((select jsonb_agg(e ->> 'id') from jsonb_array_elements(v_vanished) e
                        where e ->> 'workflowId' = m.n8n_workflow_id), '[]'::jsonb) as vanished
        from public.mvp_workflows m
       where m.n8n_workflow_id in (select e ->> 'workflowId' from jsonb_array_elements(v_items) e
                                   union select e ->> 'workflowId' from jsonb_array_elements(v_vanished) e)
       order by m.id
    loop
      v_matched := v_matched + jsonb_array_length(r.items);
      v_owned := v_owned || to_jsonb(r.n8n_workflow_id);
      v_res := public.ingest_executions(r.id, r.items, p_synced_at,
        case when jsonb_array_length(r.vanished) > 0 then jsonb_build_object('vanished', r.vanished) else '{}'::jsonb end);
      v_inserted := v_inserted + (v_res ->> 'inserted')::integer;
      v_updated := v_updated + (v_res ->> 'updated')::integer;
      if (v_res ->> 'workflow_written')::boolean then
        v_written := v_written + 1;
      end if;
    end loop;
  end if;

  if v_state ? 'frontier' or v_state ? 'backfilled' or v_state ? 'cleanup_at' then
    update public.live_tail_state
       set frontier = case when v_state ->> 'frontier' is null then frontier
                           else greatest(coalesce(frontier, (v_state ->> 'frontier')::bigint), (v_state ->> 'frontier')::bigint) end,
           backfilled = backfilled or coalesce((v_state ->> 'backfilled')::boolean, false),
           cleanup_at = coalesce((v_state ->> 'cleanup_at')::timestamptz, cleanup_at),
           updated_at = clock_timestamp()
     where name = 'live'
    returning * into s;
  end if;

  return jsonb_build_object(
    'inserted', v_inserted,
    'updated', v_updated,
    'ignored', jsonb_array_length(v_items) - v_matched,
    'workflows_written', v_written,
    'owned', v_owned,
    'frontier', s.frontier::text,
    'backfilled', s.backfilled,
    'cleanup_at', s.cleanup_at
  );
end
$$;

-- live_tail_open_executions: the ledger's open rows (not final, not vanished) with their n8n
-- ids, oldest first: a new leader re-checks them until they are final. Read only.
create or replace function public.live_tail_open_executions(p_limit integer)
returns table (n8n_execution_id text, n8n_workflow_id text, status text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select x.n8n_execution_id, x.n8n_workflow_id, x.status
    from public.workflow_executions x
   where x.status not in ('success', 'error', 'crashed', 'canceled') and x.vanished_at is null
   order by x.n8n_execution_seq
   limit greatest(0, coalesce(p_limit, 10000))
$$;

revoke all on function public.live_tail_claim(text) from public, anon, authenticated;
revoke all on function public.live_tail_ingest(bigint, jsonb, jsonb, timestamptz, jsonb) from public, anon, authenticated;
revoke all on function public.live_tail_open_executions(integer) from public, anon, authenticated;
grant execute on function public.live_tail_claim(text) to service_role;
grant execute on function public.live_tail_ingest(bigint, jsonb, jsonb, timestamptz, jsonb) to service_role;
grant execute on function public.live_tail_open_executions(integer) to service_role;

create or replace function public.workflow_sync_schema_version() returns text
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$ select '20250116000000'::text $$;
