-- workflow-sync schema: workflows, execution ledger, sync logs, idempotency keys.
-- Written to apply both to a Supabase project (roles, auth schema and the realtime publication
-- already exist) and to a plain Postgres 15+ (they are created here when missing), and to be
-- re-runnable: every statement is guarded.

-- Roles PostgREST uses. On Supabase they exist; on a plain Postgres we create them.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    begin create role anon nologin noinherit; exception when duplicate_object then null; end;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    begin create role authenticated nologin noinherit; exception when duplicate_object then null; end;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    begin create role service_role nologin noinherit bypassrls; exception when duplicate_object then null; end;
  end if;
end
$$;

-- Supabase's auth helpers, created only where the auth schema is missing (plain Postgres).
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'auth') then
    create schema auth;
    grant usage on schema auth to anon, authenticated, service_role;
  end if;
  if not exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'uid') then
    execute $f$
      create function auth.uid() returns uuid language sql stable as $b$
        select coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
      $b$
    $f$;
    grant execute on function auth.uid() to anon, authenticated, service_role;
  end if;
  if not exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'jwt') then
    execute $f$
      create function auth.jwt() returns jsonb language sql stable as $b$
        select coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
      $b$
    $f$;
    grant execute on function auth.jwt() to anon, authenticated, service_role;
  end if;
  if not exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'role') then
    execute $f$
      create function auth.role() returns text language sql stable as $b$
        select coalesce(
          nullif(current_setting('request.jwt.claim.role', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        )::text
      $b$
    $f$;
    grant execute on function auth.role() to anon, authenticated, service_role;
  end if;
end
$$;

grant usage on schema public to anon, authenticated, service_role;

-- Workflows. The seed's table may already exist on a Supabase project: create the minimum, then
-- add every column that is missing.
create table if not exists public.mvp_workflows (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  name text not null
);

alter table public.mvp_workflows
  add column if not exists description text,
  add column if not exists active boolean not null default false,
  add column if not exists status text not null default 'pending',
  add column if not exists n8n_workflow_id text,
  add column if not exists nodes jsonb not null default '[]'::jsonb,
  add column if not exists connections jsonb not null default '{}'::jsonb,
  add column if not exists settings jsonb not null default '{}'::jsonb,
  add column if not exists execution_count bigint not null default 0,
  add column if not exists successful_executions bigint not null default 0,
  add column if not exists failed_executions bigint not null default 0,
  add column if not exists last_execution_at timestamptz,
  add column if not exists last_execution_status text,
  add column if not exists last_sync_at timestamptz,
  add column if not exists last_error text,
  add column if not exists version integer not null default 1,
  -- deploys attempted for this row; above 0 a deploy first looks in n8n for the workflow an
  -- earlier attempt may have created before the process died (its staticData marker names the row)
  add column if not exists deploy_attempts integer not null default 0,
  add column if not exists created_at timestamptz not null default now(),
  add column if not exists updated_at timestamptz not null default now();

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'mvp_workflows_status_check') then
    alter table public.mvp_workflows add constraint mvp_workflows_status_check
      check (status in ('pending', 'deployed', 'error', 'missing_in_n8n'));
  end if;
  if not exists (select 1 from pg_constraint where conname = 'mvp_workflows_name_check') then
    alter table public.mvp_workflows add constraint mvp_workflows_name_check
      check (char_length(name) between 1 and 200);
  end if;
  if not exists (select 1 from pg_constraint where conname = 'mvp_workflows_counts_check') then
    alter table public.mvp_workflows add constraint mvp_workflows_counts_check
      check (execution_count >= 0 and successful_executions >= 0 and failed_executions >= 0);
  end if;
  -- On Supabase, a user's workflows go with the user.
  if exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'auth' and c.relname = 'users' and c.relkind = 'r')
     and not exists (select 1 from pg_constraint where conname = 'mvp_workflows_user_id_fkey') then
    alter table public.mvp_workflows add constraint mvp_workflows_user_id_fkey
      foreign key (user_id) references auth.users (id) on delete cascade;
  end if;
end
$$;

create unique index if not exists mvp_workflows_n8n_workflow_id_key
  on public.mvp_workflows (n8n_workflow_id) where n8n_workflow_id is not null;
-- keyset pagination: newest first per user
create index if not exists mvp_workflows_user_created_idx
  on public.mvp_workflows (user_id, created_at desc, id desc);
create index if not exists mvp_workflows_status_idx
  on public.mvp_workflows (status) where status <> 'deployed';

create or replace function public.workflow_sync_touch_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;

drop trigger if exists mvp_workflows_touch_updated_at on public.mvp_workflows;
create trigger mvp_workflows_touch_updated_at before update on public.mvp_workflows
  for each row execute function public.workflow_sync_touch_updated_at();

-- Execution ledger: one row per n8n execution.
create table if not exists public.workflow_executions (
  id bigint generated always as identity primary key,
  workflow_id uuid not null references public.mvp_workflows (id) on delete cascade,
  user_id uuid not null,
  n8n_execution_id text not null,
  n8n_workflow_id text not null,
  status text not null,
  mode text,
  finished boolean not null default false,
  started_at timestamptz,
  stopped_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint workflow_executions_workflow_execution_key unique (workflow_id, n8n_execution_id)
);
create index if not exists workflow_executions_user_idx on public.workflow_executions (user_id);
create index if not exists workflow_executions_workflow_started_idx
  on public.workflow_executions (workflow_id, started_at desc, id desc);

-- Sync logs: one row per sync (and per cleanup).
create table if not exists public.sync_logs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid,
  sync_type text not null,
  status text not null,
  duration_ms integer not null default 0,
  workflows_synced integer not null default 0,
  workflows_failed integer not null default 0,
  executions_ingested integer not null default 0,
  error text,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index if not exists sync_logs_user_created_idx on public.sync_logs (user_id, created_at desc, id desc);
create index if not exists sync_logs_created_idx on public.sync_logs (created_at desc);

-- Idempotency keys: the first answer to a POST, replayed for the same key (per user, expiring).
create table if not exists public.idempotency_keys (
  user_id uuid not null,
  key text not null,
  request_hash text not null,
  status_code integer,
  response jsonb,
  workflow_id uuid,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (user_id, key)
);
create index if not exists idempotency_keys_expires_idx on public.idempotency_keys (expires_at);

-- Row-level security: a signed-in user sees and changes only their own rows.
alter table public.mvp_workflows enable row level security;
alter table public.workflow_executions enable row level security;
alter table public.sync_logs enable row level security;
alter table public.idempotency_keys enable row level security;

drop policy if exists "own workflows: select" on public.mvp_workflows;
drop policy if exists "own workflows: insert" on public.mvp_workflows;
drop policy if exists "own workflows: update" on public.mvp_workflows;
drop policy if exists "own workflows: delete" on public.mvp_workflows;
create policy "own workflows: select" on public.mvp_workflows for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "own workflows: insert" on public.mvp_workflows for insert to authenticated
  with check ((select auth.uid()) = user_id);
create policy "own workflows: update" on public.mvp_workflows for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "own workflows: delete" on public.mvp_workflows for delete to authenticated
  using ((select auth.uid()) = user_id);

drop policy if exists "own executions: select" on public.workflow_executions;
drop policy if exists "own executions: insert" on public.workflow_executions;
drop policy if exists "own executions: update" on public.workflow_executions;
create policy "own executions: select" on public.workflow_executions for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "own executions: insert" on public.workflow_executions for insert to authenticated
  with check ((select auth.uid()) = user_id);
create policy "own executions: update" on public.workflow_executions for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

drop policy if exists "own sync logs: select" on public.sync_logs;
drop policy if exists "own sync logs: insert" on public.sync_logs;
create policy "own sync logs: select" on public.sync_logs for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "own sync logs: insert" on public.sync_logs for insert to authenticated
  with check ((select auth.uid()) = user_id);

drop policy if exists "own idempotency keys: all" on public.idempotency_keys;
create policy "own idempotency keys: all" on public.idempotency_keys for all to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- Grants: authenticated works through RLS; anon gets nothing (Supabase grants it by default).
revoke all on public.mvp_workflows, public.workflow_executions, public.sync_logs, public.idempotency_keys from anon;
grant select, insert, update, delete on public.mvp_workflows to authenticated;
grant select, insert, update on public.workflow_executions to authenticated;
grant select, insert on public.sync_logs to authenticated;
grant select, insert, update, delete on public.idempotency_keys to authenticated;
grant all on public.mvp_workflows, public.workflow_executions, public.sync_logs, public.idempotency_keys to service_role;
grant usage, select on all sequences in schema public to authenticated, service_role;

-- Supabase Realtime streams mvp_workflows row changes to dashboards.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if not exists (select 1 from pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'mvp_workflows') then
    alter publication supabase_realtime add table public.mvp_workflows;
  end if;
end
$$;
