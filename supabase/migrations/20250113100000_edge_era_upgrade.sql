-- Databases from the Edge Function era (the phase 3 guide's 20250108_workflow_sync_schema.sql):
-- their sync_logs and count columns already existed when 20250108000000 ran, so its
-- `create table if not exists` / `add column if not exists` kept the old shapes. This brings them
-- to the service's: every row and count is kept. On any other database it changes nothing.

-- sync_logs: the columns record_sync_log writes; the old error_message is copied into error.
alter table public.sync_logs
  add column if not exists workflows_failed integer not null default 0,
  add column if not exists executions_ingested integer not null default 0,
  add column if not exists error text,
  add column if not exists details jsonb not null default '{}'::jsonb;

do $$
begin
  if exists (select 1 from information_schema.columns
             where table_schema = 'public' and table_name = 'sync_logs' and column_name = 'error_message') then
    execute 'update public.sync_logs set error = error_message where error is null and error_message is not null';
  end if;
end
$$;

update public.sync_logs set duration_ms = 0 where duration_ms is null;
update public.sync_logs set workflows_synced = 0 where workflows_synced is null;
update public.sync_logs set created_at = now() where created_at is null;
alter table public.sync_logs
  alter column duration_ms set default 0,
  alter column duration_ms set not null,
  alter column workflows_synced set default 0,
  alter column workflows_synced set not null,
  alter column created_at set default now(),
  alter column created_at set not null;

-- mvp_workflows: the old counts were nullable integers (NULL on rows never synced). The update
-- queues the event log's deferred trigger; it fires now, before the table is altered.
update public.mvp_workflows
   set execution_count = coalesce(execution_count, 0),
       successful_executions = coalesce(successful_executions, 0),
       failed_executions = coalesce(failed_executions, 0)
 where execution_count is null or successful_executions is null or failed_executions is null;
set constraints all immediate;

do $$
declare
  c text;
begin
  foreach c in array array['execution_count', 'successful_executions', 'failed_executions'] loop
    if exists (select 1 from information_schema.columns
               where table_schema = 'public' and table_name = 'mvp_workflows' and column_name = c
                 and data_type <> 'bigint') then
      execute format('alter table public.mvp_workflows alter column %I type bigint', c);
    end if;
    execute format('alter table public.mvp_workflows alter column %I set default 0, alter column %I set not null', c, c);
  end loop;
end
$$;
