-- The atomic writes of the workflow routes as SQL functions, lease locks, and the schema version.
--
-- ONE DEFINITION, TWO CALLERS. The Postgres store (pg, PGlite) calls these functions with a plain
-- `select public.fn(p_arg => $1, ...)` inside its RLS transaction; the Supabase store calls the very
-- same functions through PostgREST (`supabase.rpc('fn', { p_arg: ... })`, i.e.
-- `POST /rest/v1/rpc/fn`), where PostgREST runs them in a transaction as the caller's role with the
-- caller's JWT claims. Every function is SECURITY INVOKER, so row-level security applies exactly as
-- for the caller's own statements: a user only ever reads or writes their own rows; the service
-- role (cron routes) bypasses RLS. Each one is callable by `authenticated` and `service_role`,
-- never by `anon` or PUBLIC.
--
-- ERRORS the service maps to problems: `raise exception ... using errcode = 'P0001', hint =
-- 'workflow_sync:<code>'` where <code> is one of the contract's problem codes (conflict,
-- precondition_failed, forbidden, not_found, validation_failed). PostgREST forwards them as
-- `{"code": "P0001", "message": ..., "details": null, "hint": "workflow_sync:conflict"}` (HTTP 400);
-- the pg driver as an error with the same `code` and `hint`.
--
-- Re-runnable; valid on a plain Postgres 15+, on a Supabase project and on embedded PGlite.

-- ---------------------------------------------------------------------------
-- A workflow row in the shape the service works with: the contract's columns plus
-- deploy_attempts (internal; stripped from API answers).
create or replace function public.workflow_sync_row(w public.mvp_workflows) returns jsonb
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$
  select jsonb_build_object(
    'id', w.id, 'user_id', w.user_id, 'name', w.name, 'description', w.description,
    'active', w.active, 'status', w.status, 'n8n_workflow_id', w.n8n_workflow_id,
    'nodes', w.nodes, 'connections', w.connections, 'settings', w.settings,
    'execution_count', w.execution_count, 'successful_executions', w.successful_executions,
    'failed_executions', w.failed_executions, 'last_execution_at', w.last_execution_at,
    'last_execution_status', w.last_execution_status, 'last_sync_at', w.last_sync_at,
    'last_error', w.last_error, 'version', w.version, 'created_at', w.created_at,
    'updated_at', w.updated_at, 'deploy_attempts', w.deploy_attempts)
$$;

-- ---------------------------------------------------------------------------
-- create_workflow: POST /workflows, the database half, in one transaction. With an idempotency
-- key: an expired key is freed, the key is claimed for this request (or, when taken, read under a
-- row lock: a different request body is a conflict, a completed request is replayed, a request
-- that died after inserting its row is resumed); then the row is inserted `pending` (inactive: the
-- deploy activates it) and linked to the key.
-- Returns {"outcome": "created" | "resumed", "workflow": row} or
--         {"outcome": "replay", "status_code": int, "response": the stored answer}.
create or replace function public.create_workflow(
  p_name text,
  p_description text default null,
  p_nodes jsonb default '[]'::jsonb,
  p_connections jsonb default '{}'::jsonb,
  p_settings jsonb default '{}'::jsonb,
  p_idempotency_key text default null,
  p_request_hash text default null,
  p_ttl_hours integer default 24
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := auth.uid();
  v_key record;
  w public.mvp_workflows;
begin
  if v_user is null then
    raise exception 'creating a workflow needs a signed-in user' using errcode = 'P0001', hint = 'workflow_sync:forbidden';
  end if;
  if p_idempotency_key is not null then
    if coalesce(p_request_hash, '') = '' then
      raise exception 'an idempotency key needs the request hash' using errcode = 'P0001', hint = 'workflow_sync:validation_failed';
    end if;
    delete from public.idempotency_keys
     where user_id = v_user and key = p_idempotency_key and expires_at <= now();
    insert into public.idempotency_keys (user_id, key, request_hash, expires_at)
      values (v_user, p_idempotency_key, p_request_hash,
              now() + make_interval(hours => greatest(1, coalesce(p_ttl_hours, 24))))
      on conflict (user_id, key) do nothing;
    if not found then
      select k.request_hash, k.status_code, k.response, k.workflow_id into v_key
        from public.idempotency_keys k
       where k.user_id = v_user and k.key = p_idempotency_key
         for update;
      if v_key.request_hash is distinct from p_request_hash then
        raise exception 'This Idempotency-Key was already used with a different request body'
          using errcode = 'P0001', hint = 'workflow_sync:conflict';
      end if;
      if v_key.status_code is not null then
        return jsonb_build_object('outcome', 'replay', 'status_code', v_key.status_code, 'response', v_key.response);
      end if;
      if v_key.workflow_id is not null then
        select * into w from public.mvp_workflows m where m.id = v_key.workflow_id and m.user_id = v_user;
        if found then
          return jsonb_build_object('outcome', 'resumed', 'workflow', public.workflow_sync_row(w));
        end if;
      end if;
    end if;
  end if;
  insert into public.mvp_workflows (user_id, name, description, nodes, connections, settings, active, status)
    values (v_user, p_name, p_description, coalesce(p_nodes, '[]'::jsonb), coalesce(p_connections, '{}'::jsonb),
            coalesce(p_settings, '{}'::jsonb), false, 'pending')
    returning * into w;
  if p_idempotency_key is not null then
    update public.idempotency_keys set workflow_id = w.id where user_id = v_user and key = p_idempotency_key;
  end if;
  return jsonb_build_object('outcome', 'created', 'workflow', public.workflow_sync_row(w));
end
$$;

-- complete_idempotency_key: stores the answer that later requests with the key replay.
create or replace function public.complete_idempotency_key(
  p_idempotency_key text,
  p_status_code integer,
  p_response jsonb
) returns boolean
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_rows integer;
begin
  update public.idempotency_keys
     set status_code = p_status_code, response = p_response
   where user_id = auth.uid() and key = p_idempotency_key;
  get diagnostics v_rows = row_count;
  return v_rows > 0;
end
$$;

-- ---------------------------------------------------------------------------
-- begin_deploy: takes the workflow row lock and counts the attempt, in one transaction. Returns the
-- row as it was before this attempt was counted (deploy_attempts > 0 means an earlier attempt may
-- have created the workflow in n8n), or NULL when the caller cannot see it.
create or replace function public.begin_deploy(p_workflow_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := auth.uid();
  w public.mvp_workflows;
begin
  select * into w from public.mvp_workflows m
   where m.id = p_workflow_id and (v_user is null or m.user_id = v_user)
     for update;
  if not found then
    return null;
  end if;
  update public.mvp_workflows set deploy_attempts = deploy_attempts + 1 where id = p_workflow_id;
  return public.workflow_sync_row(w);
end
$$;

-- record_deploy_outcome: a deploy's state change. p_outcome: {"status", "last_error"} always;
-- "n8n_workflow_id" and "active" only when present (absent keys keep the column). Returns the row,
-- or NULL when the caller cannot see it.
create or replace function public.record_deploy_outcome(p_workflow_id uuid, p_outcome jsonb) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := auth.uid();
  w public.mvp_workflows;
begin
  if coalesce(p_outcome ->> 'status', '') = '' then
    raise exception 'a deploy outcome needs a status' using errcode = 'P0001', hint = 'workflow_sync:validation_failed';
  end if;
  update public.mvp_workflows m
     set status = p_outcome ->> 'status',
         last_error = p_outcome ->> 'last_error',
         n8n_workflow_id = case when p_outcome ? 'n8n_workflow_id' then p_outcome ->> 'n8n_workflow_id' else m.n8n_workflow_id end,
         active = case when p_outcome ? 'active' then (p_outcome ->> 'active')::boolean else m.active end
   where m.id = p_workflow_id and (v_user is null or m.user_id = v_user)
  returning * into w;
  if not found then
    return null;
  end if;
  return public.workflow_sync_row(w);
end
$$;

-- update_workflow_definition: PATCH /workflows/{id}. p_changes holds the keys to change (name,
-- description, nodes, connections, settings; a JSON null description clears it); the version goes
-- up by one. With p_expected_version (If-Match), a row at another version is left alone and the
-- call raises precondition_failed. Returns the row, or NULL when the caller has no such workflow.
create or replace function public.update_workflow_definition(
  p_workflow_id uuid,
  p_changes jsonb,
  p_expected_version integer default null
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := auth.uid();
  v_changes jsonb := coalesce(p_changes, '{}'::jsonb);
  w public.mvp_workflows;
begin
  if v_user is null then
    raise exception 'changing a workflow needs a signed-in user' using errcode = 'P0001', hint = 'workflow_sync:forbidden';
  end if;
  update public.mvp_workflows m
     set name = case when v_changes ? 'name' then v_changes ->> 'name' else m.name end,
         description = case when v_changes ? 'description' then v_changes ->> 'description' else m.description end,
         nodes = case when v_changes ? 'nodes' then v_changes -> 'nodes' else m.nodes end,
         connections = case when v_changes ? 'connections' then v_changes -> 'connections' else m.connections end,
         settings = case when v_changes ? 'settings' then v_changes -> 'settings' else m.settings end,
         version = m.version + 1
   where m.id = p_workflow_id and m.user_id = v_user
     and (p_expected_version is null or m.version = p_expected_version)
  returning * into w;
  if found then
    return public.workflow_sync_row(w);
  end if;
  if p_expected_version is not null
     and exists (select 1 from public.mvp_workflows m where m.id = p_workflow_id and m.user_id = v_user) then
    raise exception 'The workflow changed since that version; fetch it again and retry with its current version'
      using errcode = 'P0001', hint = 'workflow_sync:precondition_failed';
  end if;
  return null;
end
$$;

-- set_workflow_active: after n8n (de)activated the workflow, the row follows: `active` changes
-- (and the version goes up) only when it differs; an error recorded by an earlier deploy is
-- cleared. Nothing is written when nothing changes. Returns the row, or NULL.
create or replace function public.set_workflow_active(p_workflow_id uuid, p_active boolean) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := auth.uid();
  w public.mvp_workflows;
begin
  if v_user is null then
    raise exception 'activating a workflow needs a signed-in user' using errcode = 'P0001', hint = 'workflow_sync:forbidden';
  end if;
  select * into w from public.mvp_workflows m where m.id = p_workflow_id and m.user_id = v_user for update;
  if not found then
    return null;
  end if;
  if w.active is distinct from p_active or w.last_error is not null then
    update public.mvp_workflows m
       set active = p_active,
           version = m.version + case when m.active is distinct from p_active then 1 else 0 end,
           status = case when m.last_error is not null then 'deployed' else m.status end,
           last_error = null
     where m.id = p_workflow_id
    returning * into w;
  end if;
  return public.workflow_sync_row(w);
end
$$;

-- ---------------------------------------------------------------------------
-- sync_log_stats: GET /sync/stats, per sync_type and status since p_since (RLS: a user sees their
-- own syncs, the service every sync). A function because PostgREST's aggregates are off by default.
create or replace function public.sync_log_stats(p_since timestamptz)
returns table (sync_type text, status text, count integer, avg_duration_ms integer)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select l.sync_type, l.status, count(*)::int, round(avg(l.duration_ms))::int
    from public.sync_logs l
   where l.created_at >= p_since
   group by l.sync_type, l.status
   order by l.sync_type, l.status
$$;

-- ---------------------------------------------------------------------------
-- Reads of the sync engine that PostgREST cannot express (a join, DISTINCT, long id lists) or
-- that must be paged under Supabase's max_rows (1000 by default). Both stores call them (the
-- Postgres store with select, in the same pages).

-- list_sync_targets: the workflows a sync looks at, with the effective stop point (the larger of
-- the workflow's own and the instance scan's, see workflow_scan_floors), ordered by (user_id, id),
-- in keyset pages after (p_after_user, p_after_id). RLS: a user sees their own workflows.
create or replace function public.list_sync_targets(
  p_workflow_ids uuid[] default null,
  p_after_user uuid default null,
  p_after_id uuid default null,
  p_limit integer default 1000
) returns table (id uuid, user_id uuid, name text, active boolean, status text, n8n_workflow_id text, execution_floor_id text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select m.id, m.user_id, m.name, m.active, m.status, m.n8n_workflow_id,
         (case when m.execution_floor_id is null then null
               else greatest(m.execution_floor_id, f.floor_id) end)::text
    from public.mvp_workflows m
    left join public.workflow_scan_floors f on f.workflow_id = m.id
   where (p_workflow_ids is null or m.id = any(p_workflow_ids))
     and (p_after_user is null or (m.user_id, m.id) > (p_after_user, p_after_id))
   order by m.user_id, m.id
   limit greatest(1, least(coalesce(p_limit, 1000), 1000))
$$;

-- workflows_with_open_rows: which of these workflows have open ledger rows (waiting, new,
-- running, unknown; not vanished). A set of uuids (PostgREST answers a JSON array of strings).
create or replace function public.workflows_with_open_rows(p_workflow_ids uuid[])
returns setof uuid
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
  select distinct x.workflow_id from public.workflow_executions x
   where x.workflow_id = any(p_workflow_ids)
     and x.status not in ('success', 'error', 'crashed', 'canceled') and x.vanished_at is null
$$;

-- ---------------------------------------------------------------------------
-- Lease locks, for the Supabase store: PostgREST has no session, so session advisory locks are
-- out of reach; a lease is a row that names its holder and expires unless renewed. The holder
-- renews it while it works (every third of the TTL) and deletes it when done; a holder that died
-- loses it when the lease runs out. (The Postgres store keeps advisory locks.)
--
-- Keys: `user:<user id>:...` for a user's things (their sync, a deploy of their workflow) and
-- `service:...` for the cron's. A signed-in user may only take, see or release keys under their own
-- `user:<id>:` prefix (RLS); the service role may take any.
create table if not exists public.workflow_sync_locks (
  key text primary key,
  holder text not null,
  expires_at timestamptz not null,
  acquired_at timestamptz not null default now()
);

alter table public.workflow_sync_locks enable row level security;
drop policy if exists "own locks: all" on public.workflow_sync_locks;
create policy "own locks: all" on public.workflow_sync_locks for all to authenticated
  using (key like 'user:' || (select auth.uid())::text || ':%')
  with check (key like 'user:' || (select auth.uid())::text || ':%');

revoke all on public.workflow_sync_locks from public, anon;
grant select, insert, update, delete on public.workflow_sync_locks to authenticated;
grant all on public.workflow_sync_locks to service_role;

-- try_acquire_lock: true when p_holder now holds p_key for p_ttl_seconds (a free key, an expired
-- lease, or one p_holder already holds); false when another holder's lease is still running.
create or replace function public.try_acquire_lock(p_key text, p_holder text, p_ttl_seconds integer) returns boolean
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_got boolean;
begin
  if coalesce(p_key, '') = '' or coalesce(p_holder, '') = '' or p_ttl_seconds is null or p_ttl_seconds < 1 or p_ttl_seconds > 3600 then
    raise exception 'a lock needs a key, a holder and a TTL of 1 to 3600 seconds' using errcode = 'P0001', hint = 'workflow_sync:validation_failed';
  end if;
  insert into public.workflow_sync_locks as l (key, holder, expires_at, acquired_at)
    values (p_key, p_holder, clock_timestamp() + make_interval(secs => p_ttl_seconds), clock_timestamp())
  on conflict (key) do update
     set holder = excluded.holder,
         expires_at = excluded.expires_at,
         acquired_at = case when l.holder = excluded.holder then l.acquired_at else excluded.acquired_at end
   where l.expires_at <= clock_timestamp() or l.holder = excluded.holder
  returning true into v_got;
  return coalesce(v_got, false);
end
$$;

-- renew_lock: extends p_holder's lease; false when it is no longer p_holder's (it expired and
-- someone else took it).
create or replace function public.renew_lock(p_key text, p_holder text, p_ttl_seconds integer) returns boolean
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_rows integer;
begin
  if p_ttl_seconds is null or p_ttl_seconds < 1 or p_ttl_seconds > 3600 then
    raise exception 'a lease TTL is 1 to 3600 seconds' using errcode = 'P0001', hint = 'workflow_sync:validation_failed';
  end if;
  update public.workflow_sync_locks
     set expires_at = clock_timestamp() + make_interval(secs => p_ttl_seconds)
   where key = p_key and holder = p_holder;
  get diagnostics v_rows = row_count;
  return v_rows > 0;
end
$$;

-- release_lock: ends p_holder's lease (a lease someone else holds now is left alone).
create or replace function public.release_lock(p_key text, p_holder text) returns boolean
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_rows integer;
begin
  delete from public.workflow_sync_locks where key = p_key and holder = p_holder;
  get diagnostics v_rows = row_count;
  return v_rows > 0;
end
$$;

-- ---------------------------------------------------------------------------
-- workflow_sync_schema_version: the newest migration this schema includes. The Supabase store
-- cannot migrate (it has no database password) and checks this at boot against the newest file
-- in supabase/migrations: EVERY NEW MIGRATION MUST REDEFINE THIS FUNCTION WITH ITS OWN VERSION
-- (test/db/migrations.test.ts checks it). It reveals nothing, so anon may call it too.
create or replace function public.workflow_sync_schema_version() returns text
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$ select '20250112000000'::text $$;

-- ---------------------------------------------------------------------------
-- Callable by signed-in users (under RLS) and the service role; never by anon or PUBLIC.
revoke all on function public.workflow_sync_row(public.mvp_workflows) from public, anon;
revoke all on function public.create_workflow(text, text, jsonb, jsonb, jsonb, text, text, integer) from public, anon;
revoke all on function public.complete_idempotency_key(text, integer, jsonb) from public, anon;
revoke all on function public.begin_deploy(uuid) from public, anon;
revoke all on function public.record_deploy_outcome(uuid, jsonb) from public, anon;
revoke all on function public.update_workflow_definition(uuid, jsonb, integer) from public, anon;
revoke all on function public.set_workflow_active(uuid, boolean) from public, anon;
revoke all on function public.sync_log_stats(timestamptz) from public, anon;
revoke all on function public.list_sync_targets(uuid[], uuid, uuid, integer) from public, anon;
revoke all on function public.workflows_with_open_rows(uuid[]) from public, anon;
revoke all on function public.try_acquire_lock(text, text, integer) from public, anon;
revoke all on function public.renew_lock(text, text, integer) from public, anon;
revoke all on function public.release_lock(text, text) from public, anon;
grant execute on function public.workflow_sync_row(public.mvp_workflows) to authenticated, service_role;
grant execute on function public.create_workflow(text, text, jsonb, jsonb, jsonb, text, text, integer) to authenticated, service_role;
grant execute on function public.complete_idempotency_key(text, integer, jsonb) to authenticated, service_role;
grant execute on function public.begin_deploy(uuid) to authenticated, service_role;
grant execute on function public.record_deploy_outcome(uuid, jsonb) to authenticated, service_role;
grant execute on function public.update_workflow_definition(uuid, jsonb, integer) to authenticated, service_role;
grant execute on function public.set_workflow_active(uuid, boolean) to authenticated, service_role;
grant execute on function public.sync_log_stats(timestamptz) to authenticated, service_role;
grant execute on function public.list_sync_targets(uuid[], uuid, uuid, integer) to authenticated, service_role;
grant execute on function public.workflows_with_open_rows(uuid[]) to authenticated, service_role;
grant execute on function public.try_acquire_lock(text, text, integer) to authenticated, service_role;
grant execute on function public.renew_lock(text, text, integer) to authenticated, service_role;
grant execute on function public.release_lock(text, text) to authenticated, service_role;
grant execute on function public.workflow_sync_schema_version() to anon, authenticated, service_role;
