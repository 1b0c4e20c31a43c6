-- The trust model, enforced by the database (README: "Security model").
--
-- Every Supabase project serves `public` through its Data API to anyone holding a signed-in user's
-- access token, so every grant to `authenticated` is an API users can call around this service.
-- From here on:
--   * a user's token (`authenticated`, under RLS) may READ the user's own rows, and may WRITE only
--     the fields the user authors — name, description, nodes, connections, settings, active — of
--     their own mvp_workflows rows (insert, update; and delete their own rows);
--   * everything derived from n8n or from the service's bookkeeping (status, n8n_workflow_id, the
--     counts, last_*, stop points, deploy_attempts, version, the ledger, sync logs, scan floors,
--     idempotency records, locks, the event log) is written only with the service's credential,
--     `service_role`: the write functions are executable by service_role alone;
--   * `anon` reads and writes nothing (it may ask for the schema version, an IMMUTABLE constant
--     the Supabase store's boot check and /ready read with the anon key);
--   * no VOLATILE function in `public` is executable by anon or authenticated (nor by PUBLIC,
--     which every new function is granted by default); STABLE/IMMUTABLE reads are.
--
-- THE MECHANISM (one, in both modes): the service's writes are SQL functions executable only by
-- service_role (SECURITY INVOKER, fixed search_path). The service calls them with its own
-- credential — in Postgres/PGlite mode a transaction as `service_role`, in Supabase mode the
-- service-role key — and passes the signed-in user's id (verified from the user's token) as
-- p_user_id: a function that acts for a user only touches rows whose user_id is that id, so the
-- ownership check lives in the same statement as the write. User reads keep the user's claims.
--
-- Supabase's default privileges grant every new table, sequence and function in `public` to anon
-- and authenticated (ALL: TRUNCATE, TRIGGER and REFERENCES included; TRUNCATE ignores RLS), so
-- every object the migrations create is revoked explicitly here and granted back only as above.
-- Only this service's objects are touched: a project's own tables in `public` keep their grants.
-- Re-runnable; valid on a plain Postgres 15+, on a Supabase project and on embedded PGlite.

-- ---------------------------------------------------------------------------
-- Tables: nothing for PUBLIC, anon, authenticated; then back only what the model allows.
revoke all on table
  public.mvp_workflows, public.workflow_executions, public.sync_logs, public.idempotency_keys,
  public.workflow_scan_floors, public.workflow_events, public.workflow_events_purged,
  public.workflow_sync_locks
  from public, anon, authenticated;
grant all on table
  public.mvp_workflows, public.workflow_executions, public.sync_logs, public.idempotency_keys,
  public.workflow_scan_floors, public.workflow_events, public.workflow_events_purged,
  public.workflow_sync_locks
  to service_role;

-- mvp_workflows: read own rows; insert/update only the authored columns (plus user_id on insert,
-- which the insert policy pins to the caller); delete own rows. Defaults fill the rest (status
-- 'pending', counts 0), so a row inserted through the Data API is deployed by the user's next sync.
grant select on public.mvp_workflows to authenticated;
grant insert (user_id, name, description, nodes, connections, settings, active) on public.mvp_workflows to authenticated;
grant update (name, description, nodes, connections, settings, active) on public.mvp_workflows to authenticated;
grant delete on public.mvp_workflows to authenticated;

-- The rest: read own rows (the policies below), never write.
grant select on public.workflow_executions, public.sync_logs, public.idempotency_keys,
  public.workflow_scan_floors, public.workflow_events, public.workflow_events_purged
  to authenticated;
-- workflow_sync_locks: the service's alone (no grant).

-- Write policies for users on service-owned tables go (the grants already refuse; a policy that
-- could never apply only misleads a reader).
drop policy if exists "own executions: insert" on public.workflow_executions;
drop policy if exists "own executions: update" on public.workflow_executions;
drop policy if exists "own sync logs: insert" on public.sync_logs;
drop policy if exists "own idempotency keys: all" on public.idempotency_keys;
drop policy if exists "own idempotency keys: select" on public.idempotency_keys;
create policy "own idempotency keys: select" on public.idempotency_keys for select to authenticated
  using ((select auth.uid()) = user_id);
drop policy if exists "own locks: all" on public.workflow_sync_locks;

-- Sequences (identity columns): nobody but the service.
do $$
declare
  s text;
begin
  foreach s in array array[pg_get_serial_sequence('public.workflow_executions', 'id'),
                           pg_get_serial_sequence('public.workflow_events', 'id')] loop
    if s is not null then
      execute format('revoke all on sequence %s from public, anon, authenticated', s);
      execute format('grant usage, select on sequence %s to service_role', s);
    end if;
  end loop;
end
$$;

-- ---------------------------------------------------------------------------
-- A user's direct edit (Data API) of a deployed row: n8n must follow. The row goes back to
-- `pending` (the user's next sync or redeploy pushes it to n8n) and its version moves on (If-Match
-- of the service's routes sees the change). The service's own writes run as service_role and are
-- left alone (its functions set status and version themselves).
create or replace function public.workflow_sync_user_edit() returns trigger
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
  if current_user = 'authenticated'
     and (new.name, new.description, new.nodes, new.connections, new.settings, new.active)
         is distinct from (old.name, old.description, old.nodes, old.connections, old.settings, old.active) then
    new.version := old.version + 1;
    new.status := 'pending';
  end if;
  return new;
end
$$;

drop trigger if exists mvp_workflows_user_edit on public.mvp_workflows;
create trigger mvp_workflows_user_edit before update on public.mvp_workflows
  for each row execute function public.workflow_sync_user_edit();

-- ---------------------------------------------------------------------------
-- The workflow routes' writes, now for the service: the user they act for is an argument (the
-- service verified it from the user's token), not the caller's claims (the service's are its own).
drop function if exists public.create_workflow(text, text, jsonb, jsonb, jsonb, text, text, integer);
drop function if exists public.complete_idempotency_key(text, integer, jsonb);
drop function if exists public.begin_deploy(uuid);
drop function if exists public.record_deploy_outcome(uuid, jsonb);
drop function if exists public.update_workflow_definition(uuid, jsonb, integer);
drop function if exists public.set_workflow_active(uuid, boolean);

-- create_workflow: POST /workflows, the database half (see 20250112000000 for the key's life),
-- for user p_user_id.
create or replace function public.create_workflow(
  p_user_id uuid,
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
  v_user uuid := p_user_id;
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

-- complete_idempotency_key: stores the answer that later requests with p_user_id's key replay.
create or replace function public.complete_idempotency_key(
  p_user_id uuid,
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
   where user_id = p_user_id and key = p_idempotency_key;
  get diagnostics v_rows = row_count;
  return v_rows > 0;
end
$$;

-- begin_deploy: row lock + attempt count; the row as before, or NULL when it is not p_user_id's
-- (p_user_id NULL: the service's own work, any row).
create or replace function public.begin_deploy(p_workflow_id uuid, p_user_id uuid default null) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  w public.mvp_workflows;
begin
  select * into w from public.mvp_workflows m
   where m.id = p_workflow_id and (p_user_id is null or m.user_id = p_user_id)
     for update;
  if not found then
    return null;
  end if;
  update public.mvp_workflows set deploy_attempts = deploy_attempts + 1 where id = p_workflow_id;
  return public.workflow_sync_row(w);
end
$$;

-- record_deploy_outcome: a deploy's state change (see 20250112000000); NULL when the row is not
-- p_user_id's (p_user_id NULL: any row).
create or replace function public.record_deploy_outcome(p_workflow_id uuid, p_outcome jsonb, p_user_id uuid default null) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
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
   where m.id = p_workflow_id and (p_user_id is null or m.user_id = p_user_id)
  returning * into w;
  if not found then
    return null;
  end if;
  return public.workflow_sync_row(w);
end
$$;

-- update_workflow_definition: PATCH /workflows/{id} of p_user_id's row (see 20250112000000).
create or replace function public.update_workflow_definition(
  p_workflow_id uuid,
  p_changes jsonb,
  p_user_id uuid,
  p_expected_version integer default null
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := p_user_id;
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

-- set_workflow_active: after n8n (de)activated p_user_id's workflow (see 20250112000000).
create or replace function public.set_workflow_active(p_workflow_id uuid, p_active boolean, p_user_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
  v_user uuid := p_user_id;
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
-- A user's sync, written by the service: the ledger writes for user p_user_id's workflows only
-- (p_user_id NULL: the service's own sync, any workflow). The sync reads its targets under the
-- user's claims; these check again, in the write's own transaction, that every workflow written
-- is that user's (another user's is "not found", as under RLS before).
create or replace function public.ingest_user_executions(
  p_user_id uuid,
  p_workflow_id uuid,
  p_executions jsonb,
  p_synced_at timestamptz default now(),
  p_options jsonb default '{}'::jsonb
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
  if p_user_id is not null
     and not exists (select 1 from public.mvp_workflows m where m.id = p_workflow_id and m.user_id = p_user_id) then
    raise exception 'workflow % not found', p_workflow_id using errcode = 'P0002';
  end if;
  return public.ingest_executions(p_workflow_id, p_executions, p_synced_at, p_options);
end
$$;

create or replace function public.ingest_user_executions_batch(
  p_user_id uuid,
  p_batches jsonb,
  p_synced_at timestamptz default now()
) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
  if jsonb_typeof(p_batches) <> 'array' then
    raise exception 'p_batches must be a JSON array' using errcode = '22023';
  end if;
  if p_user_id is not null and exists (
    select 1 from jsonb_array_elements(p_batches) e
     where not exists (select 1 from public.mvp_workflows m
                        where m.id = (e ->> 'workflow_id')::uuid and m.user_id = p_user_id)) then
    raise exception 'workflow not found' using errcode = 'P0002';
  end if;
  return public.ingest_executions_batch(p_batches, p_synced_at);
end
$$;

create or replace function public.mark_user_workflow_missing(
  p_user_id uuid,
  p_workflow_id uuid,
  p_n8n_workflow_id text,
  p_error text,
  p_synced_at timestamptz default now()
) returns boolean
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
  if p_user_id is not null
     and not exists (select 1 from public.mvp_workflows m where m.id = p_workflow_id and m.user_id = p_user_id) then
    return false;
  end if;
  return public.mark_workflow_missing(p_workflow_id, p_n8n_workflow_id, p_error, p_synced_at);
end
$$;

-- ---------------------------------------------------------------------------
-- workflow_sync_schema_version: the newest migration this schema includes (see 20250112000000).
create or replace function public.workflow_sync_schema_version() returns text
language sql
immutable
security invoker
set search_path = public, pg_temp
as $$ select '20250113000000'::text $$;

-- ---------------------------------------------------------------------------
-- Functions: nothing for PUBLIC, anon, authenticated; the service may run every one; users only
-- the STABLE/IMMUTABLE reads (which run under their RLS).
revoke all on function
  public.workflow_sync_touch_updated_at(),
  public.workflow_sync_user_edit(),
  public.workflow_events_log(),
  public.ingest_executions(uuid, jsonb, timestamptz, jsonb),
  public.ingest_executions_batch(jsonb, timestamptz),
  public.ingest_scan_batch(jsonb, timestamptz, jsonb),
  public.raise_scan_floors(uuid[], bigint),
  public.mark_workflow_missing(uuid, text, text, timestamptz),
  public.record_sync_log(text, text, integer, integer, integer, integer, text, jsonb, uuid),
  public.purge_workflow_events(interval, boolean),
  public.purge_expired_data(integer, integer, boolean),
  public.owned_n8n_workflows(text[], uuid[]),
  public.workflow_sync_row(public.mvp_workflows),
  public.create_workflow(uuid, text, text, jsonb, jsonb, jsonb, text, text, integer),
  public.complete_idempotency_key(uuid, text, integer, jsonb),
  public.begin_deploy(uuid, uuid),
  public.record_deploy_outcome(uuid, jsonb, uuid),
  public.update_workflow_definition(uuid, jsonb, uuid, integer),
  public.set_workflow_active(uuid, boolean, uuid),
  public.ingest_user_executions(uuid, uuid, jsonb, timestamptz, jsonb),
  public.ingest_user_executions_batch(uuid, jsonb, timestamptz),
  public.mark_user_workflow_missing(uuid, uuid, text, text, timestamptz),
  public.sync_log_stats(timestamptz),
  public.list_sync_targets(uuid[], uuid, uuid, integer),
  public.workflows_with_open_rows(uuid[]),
  public.try_acquire_lock(text, text, integer),
  public.renew_lock(text, text, integer),
  public.release_lock(text, text),
  public.workflow_sync_schema_version()
  from public, anon, authenticated;

grant execute on function
  public.ingest_executions(uuid, jsonb, timestamptz, jsonb),
  public.ingest_executions_batch(jsonb, timestamptz),
  public.ingest_scan_batch(jsonb, timestamptz, jsonb),
  public.raise_scan_floors(uuid[], bigint),
  public.mark_workflow_missing(uuid, text, text, timestamptz),
  public.record_sync_log(text, text, integer, integer, integer, integer, text, jsonb, uuid),
  public.purge_workflow_events(interval, boolean),
  public.purge_expired_data(integer, integer, boolean),
  public.owned_n8n_workflows(text[], uuid[]),
  public.workflow_sync_row(public.mvp_workflows),
  public.create_workflow(uuid, text, text, jsonb, jsonb, jsonb, text, text, integer),
  public.complete_idempotency_key(uuid, text, integer, jsonb),
  public.begin_deploy(uuid, uuid),
  public.record_deploy_outcome(uuid, jsonb, uuid),
  public.update_workflow_definition(uuid, jsonb, uuid, integer),
  public.set_workflow_active(uuid, boolean, uuid),
  public.ingest_user_executions(uuid, uuid, jsonb, timestamptz, jsonb),
  public.ingest_user_executions_batch(uuid, jsonb, timestamptz),
  public.mark_user_workflow_missing(uuid, uuid, text, text, timestamptz),
  public.sync_log_stats(timestamptz),
  public.list_sync_targets(uuid[], uuid, uuid, integer),
  public.workflows_with_open_rows(uuid[]),
  public.try_acquire_lock(text, text, integer),
  public.renew_lock(text, text, integer),
  public.release_lock(text, text),
  public.workflow_sync_schema_version()
  to service_role;

-- Reads (STABLE/IMMUTABLE, under the caller's RLS).
grant execute on function
  public.workflow_sync_row(public.mvp_workflows),
  public.sync_log_stats(timestamptz),
  public.list_sync_targets(uuid[], uuid, uuid, integer),
  public.workflows_with_open_rows(uuid[]),
  public.workflow_sync_schema_version()
  to authenticated;
grant execute on function public.workflow_sync_schema_version() to anon;
