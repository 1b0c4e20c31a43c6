-- Cleanup: retention of sync logs, ledger rows and idempotency keys, as one SQL function so that
-- both stores (Postgres and supabase-js rpc) share one definition. Counts live on mvp_workflows,
-- so purging ledger rows never changes them. Only final (or vanished) ledger rows at or below
-- their workflow's stop point (execution_floor_id) are purged: a sync never reads those again, so
-- a purged execution that n8n still keeps cannot be counted twice. Re-runnable.

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
       and (e.status in ('success', 'error', 'crashed', 'canceled') or e.vanished_at is not null)
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
       and (e.status in ('success', 'error', 'crashed', 'canceled') or e.vanished_at is not null)
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

revoke all on function public.purge_expired_data(integer, integer, boolean) from public, anon, authenticated;
grant execute on function public.purge_expired_data(integer, integer, boolean) to service_role;

-- Which of these n8n workflow ids, or marker row ids, does a row own? (cleanup's orphan test)
create or replace function public.owned_n8n_workflows(p_n8n_ids text[], p_row_ids uuid[])
returns table (n8n_workflow_id text, row_id uuid)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select w.n8n_workflow_id, null::uuid from public.mvp_workflows w where w.n8n_workflow_id = any(p_n8n_ids)
  union all
  select null::text, w.id from public.mvp_workflows w where w.id = any(p_row_ids)
$$;

revoke all on function public.owned_n8n_workflows(text[], uuid[]) from public, anon, authenticated;
grant execute on function public.owned_n8n_workflows(text[], uuid[]) to service_role;
