-- The live tail's write, set-based (replaces live_tail_ingest of 20250116000000_live_tail.sql, same
-- signature and answer). The first version wrote each workflow's items through ingest_executions,
-- one call per workflow, after picking each workflow's items out of the whole list (quadratic): a
-- burst of 5,000 executions over 1,000 workflows took 17.6 s in bench:live. Now the items are
-- grouped once and written through the instance scan's ingest_scan_batch (non-final jobs: the same
-- ledger rules, no stop point moves): 4.9 s for the same burst.
-- It also checks ownership (src/services/ownership.ts): p_identities maps each n8n workflow id of
-- the items to what n8n's copy carries ({"name", "row_id", "user_id"}: its name and staticData
-- marker); an item is written only to the row that the marker names, whose owner's `[USR-…]`
-- prefix the name starts with. A row's n8n_workflow_id alone is not proof.
-- (Not the newest migration: the schema version is left to the newest file.)
drop function if exists public.live_tail_ingest(bigint, jsonb, jsonb, timestamptz, jsonb);

-- live_tail_owns: whether n8n's copy (p_ident: {"name", "row_id", "user_id"}) is the row's own:
-- its marker names the row and its owner, and its name starts with the owner's [USR-xxxxxxxx].
create or replace function public.live_tail_owns(p_row_id uuid, p_user_id uuid, p_ident jsonb) returns boolean
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$
  select p_ident is not null
     and p_ident ->> 'row_id' = p_row_id::text
     and lower(p_ident ->> 'user_id') = p_user_id::text
     and lower(left(coalesce(p_ident ->> 'name', ''), 14)) = '[usr-' || left(replace(p_user_id::text, '-', ''), 8) || ']'
$$;

-- live_tail_ingest: one tick's writes, fenced by p_epoch, in one transaction.
-- p_items: n8n execution list items (as ingest_executions takes them, with "workflowId"); each is
--   written to the row whose n8n_workflow_id is its workflowId (items of n8n workflows no row owns
--   are ignored and counted in "ignored"), through ingest_scan_batch (non-final jobs): the same
--   ledger rules as a sync (exact counts, a final status never reverts), no stop point moves.
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
  p_state jsonb,
  p_identities jsonb
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
  v_batch jsonb;
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
    -- Items grouped by workflowId once (linear in the items), joined to the rows owning them, and
    -- written set-based by the instance scan's ingest_scan_batch (non-final jobs: the same ledger
    -- rules, no stop point moves).
    with g as (
      select e ->> 'workflowId' as wf, jsonb_agg(e order by ord) as items
        from jsonb_array_elements(v_items) with ordinality as t(e, ord)
       group by 1
    )
    select coalesce(jsonb_agg(jsonb_build_object('workflow_id', m.id, 'executions', g.items, 'final', false) order by m.id), '[]'::jsonb),
           coalesce(sum(jsonb_array_length(g.items)), 0),
           coalesce(jsonb_agg(to_jsonb(m.n8n_workflow_id)), '[]'::jsonb)
      into v_batch, v_matched, v_owned
      from public.mvp_workflows m
      join g on g.wf = m.n8n_workflow_id
     where m.n8n_workflow_id in (select wf from g)
       and public.live_tail_owns(m.id, m.user_id, coalesce(p_identities, '{}'::jsonb) -> m.n8n_workflow_id);
    if jsonb_array_length(v_batch) > 0 then
      for r in select value as res from jsonb_array_elements(public.ingest_scan_batch(v_batch, p_synced_at, '{}'::jsonb)) loop
        v_inserted := v_inserted + (r.res ->> 'inserted')::integer;
        v_updated := v_updated + (r.res ->> 'updated')::integer;
        if (r.res ->> 'workflow_written')::boolean then
          v_written := v_written + 1;
        end if;
      end loop;
    end if;
    -- Open runs n8n no longer knows (rare): one ingest_executions each workflow.
    for r in
      select m.id, m.n8n_workflow_id, v.ids
        from (select e ->> 'workflowId' as wf, jsonb_agg(e ->> 'id') as ids
                from jsonb_array_elements(v_vanished) e group by 1) v
        join public.mvp_workflows m on m.n8n_workflow_id = v.wf
       where public.live_tail_owns(m.id, m.user_id, coalesce(p_identities, '{}'::jsonb) -> m.n8n_workflow_id)
       order by m.id
    loop
      v_res := public.ingest_executions(r.id, '[]'::jsonb, p_synced_at, jsonb_build_object('vanished', r.ids));
      if not v_owned @> to_jsonb(r.n8n_workflow_id) then
        v_owned := v_owned || to_jsonb(r.n8n_workflow_id);
      end if;
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

revoke all on function public.live_tail_ingest(bigint, jsonb, jsonb, timestamptz, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.live_tail_ingest(bigint, jsonb, jsonb, timestamptz, jsonb, jsonb) to service_role;
revoke all on function public.live_tail_owns(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.live_tail_owns(uuid, uuid, jsonb) to service_role;
