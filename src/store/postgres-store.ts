// The Store over a Database: server Postgres through `pg`, or embedded PGlite. A user's READS run
// in a transaction as role `authenticated` with the user's claims (RLS, as PostgREST does it);
// reads of one statement go in one round trip (readAsUser). Everything the service RECORDS
// (deploy outcomes, definitions and versions, sync results, idempotency records) runs in a
// transaction as `service_role`, through the SQL functions only service_role may execute (the
// trust model, migrations/20250113000000): the user a write acts for is passed as p_user_id and
// the function touches only that user's rows. A user's own delete keeps the user's claims (their
// token may delete their rows). The Supabase store does the same with its service-role key.
// The SQL functions are the operation table's (operations.ts), called here as
// `select public.<fn>(p_a => $1::<type>, ...)`. Locks are session advisory locks.
import type { Database, PoolStats, Queryable } from '../db/database.ts'
import { databaseProblem } from '../db/errors.ts'
import { BatchedLookup } from '../lib/batched-lookup.ts'
import type { Workflow } from '../schemas/workflow.ts'
import * as eventSql from './event-store.ts'
import { OperationStore } from './operation-store.ts'
import { userIdOf } from './operations.ts'
import type { Arg, Args, Operation } from './operations.ts'
import type { EventLogPosition, EventLogRow, ExecutionRow, IdempotencyRecord, ListedWorkflowRow, SyncLogRow, WorkflowRow } from './rows.ts'
import { inScope, readInScope, serviceScope } from './scope.ts'
import type { Scope } from './scope.ts'
import { advisoryKey } from './store.ts'
import type { ExecutionListQuery, LockOptions, LockResult, LockSpec, SyncLogListQuery, WorkflowListQuery } from './store.ts'
import * as syncSql from './sync-store.ts'
import * as sql from './workflow-store.ts'

/** The statement of a call, per function and argument list (built once). */
const statements = new Map<string, string>()

function statementOf (op: Operation<never, unknown>, names: string[], args: Args): string {
  const key = `${op.fn}(${names.join(',')})`
  let text = statements.get(key)
  if (text === undefined) {
    const call = `public.${op.fn}(${names.map((n, i) => `${n} => $${i + 1}::${args[n]!.type}`).join(', ')})`
    text = op.shape === 'rows' ? `select * from ${call}` : `select ${call} as r`
    statements.set(key, text)
  }
  return text
}

function paramOf (arg: Arg): unknown {
  if (arg.type !== 'jsonb') return arg.value
  return arg.json ?? JSON.stringify(arg.value)
}

export class PostgresStore extends OperationStore {
  readonly db: Database

  // The list stamps of concurrent GET /workflows requests, one round trip per batch.
  private readonly listStamps: BatchedLookup<string>

  constructor (db: Database) {
    super()
    this.db = db
    this.listStamps = new BatchedLookup(async (userIds) => {
      const res = await db.query<{ stamp: string }>(sql.LIST_STAMPS.text, [userIds], { name: sql.LIST_STAMPS.name })
      return res.rows.map((r) => r.stamp)
    })
  }

  get kind (): 'pg' | 'pglite' {
    return this.db.kind
  }

  /** In the caller's scope, one transaction; database errors become problems. */
  private async tx<T> (scope: Scope, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await inScope(this.db, scope, fn)
    } catch (err) {
      throw databaseProblem(err)
    }
  }

  /** In the caller's scope, statements of one round trip each (a user's reads). */
  private async read<T> (scope: Scope, fn: (q: Queryable) => Promise<T>): Promise<T> {
    try {
      return await readInScope(this.db, scope, fn)
    } catch (err) {
      throw databaseProblem(err)
    }
  }

  protected async invoke (scope: Scope, op: Operation<never, unknown>, args: Args): Promise<unknown> {
    const names = Object.keys(args)
    const text = statementOf(op, names, args)
    const params = names.map((n) => paramOf(args[n]!))
    const call = (q: Queryable): Promise<{ rows: Array<Record<string, unknown>> }> => q.query<Record<string, unknown>>(text, params)
    // service: the bookkeeping writes run as service_role, whoever asked
    const res = op.role === 'service' ? await this.tx(serviceScope, call) : op.role === 'read' ? await this.read(scope, call) : await this.tx(scope, call)
    if (op.shape === 'rows') return res.rows
    if (op.shape === 'values') return res.rows.map((r) => r.r)
    return res.rows[0]?.r ?? null
  }

  async ping (timeoutMs = 2000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, timeoutMs, false); timer.unref() })
    try {
      return await Promise.race([this.db.query('select 1').then(() => true, () => false), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  poolStats (): PoolStats {
    return this.db.poolStats()
  }

  async close (): Promise<void> {
    await this.db.close()
  }

  // ---- table reads -----------------------------------------------------------------------------

  listWorkflows (scope: Scope, q: WorkflowListQuery): Promise<ListedWorkflowRow[]> {
    const filter = listFilter(scope, q)
    return this.read(scope, (t) => sql.listWorkflows(t, filter))
  }

  async workflowListStamp (scope: Scope): Promise<string> {
    const userId = userIdOf(scope)
    try {
      return await this.listStamps.get(userId)
    } catch (err) {
      throw databaseProblem(err)
    }
  }

  getWorkflow (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    return this.read(scope, (t) => sql.getWorkflow(t, scope.kind === 'user' ? scope.userId : null, id))
  }

  getIdempotencyRecord (scope: Scope, key: string): Promise<IdempotencyRecord | undefined> {
    const userId = userIdOf(scope)
    return this.read(scope, (t) => sql.getIdempotencyKey(t, userId, key))
  }

  deleteWorkflow (scope: Scope, id: string): Promise<boolean> {
    const userId = userIdOf(scope)
    return this.tx(scope, (t) => sql.deleteWorkflow(t, userId, id))
  }

  withLock<T> (_scope: Scope, lock: LockSpec, fn: () => Promise<T>, opts: LockOptions = {}): Promise<LockResult<T>> {
    const { namespace, key } = advisoryKey(lock)
    return this.db.withAdvisoryLock(namespace, key, fn, opts)
  }

  protected workflowVisible (scope: Scope, id: string): Promise<boolean> {
    return this.read(scope, (t) => syncSql.workflowVisible(t, id))
  }

  listExecutionHistory (scope: Scope, workflowId: string, q: ExecutionListQuery): Promise<ExecutionRow[] | undefined> {
    return this.tx(scope, async (t) => {
      if (!await syncSql.workflowVisible(t, workflowId)) return undefined
      return await syncSql.listExecutionRows(t, workflowId, q)
    })
  }

  listSyncLogs (scope: Scope, q: SyncLogListQuery): Promise<SyncLogRow[]> {
    return this.tx(scope, (t) => syncSql.listSyncLogs(t, q))
  }

  // ---- live events -----------------------------------------------------------------------------

  async eventLogPosition (scope: Scope): Promise<EventLogPosition> {
    const userId = userIdOf(scope)
    return await this.read(scope, (q) => eventSql.eventLogPosition(q, userId))
  }

  async readEventLog (scope: Scope, afterId: number, limit: number): Promise<EventLogRow[]> {
    const userId = userIdOf(scope)
    return await this.read(scope, (q) => eventSql.readEventLog(q, userId, afterId, limit))
  }

  async workflowsByIds (scope: Scope, ids: string[]): Promise<Workflow[]> {
    if (ids.length === 0) return []
    if (scope.kind === 'user') return await this.read(scope, (q) => eventSql.loadUserWorkflowsByIds(q, scope.userId, ids))
    return await this.read(scope, (q) => eventSql.loadWorkflowsByIds(q, ids))
  }
}

function listFilter (scope: Scope, q: WorkflowListQuery): sql.ListFilter {
  const filter: sql.ListFilter = { userId: userIdOf(scope), limit: q.limit }
  if (q.after) filter.after = q.after
  if (q.status) filter.status = q.status
  if (q.active !== undefined) filter.active = q.active
  if (q.definition === false) filter.definition = false
  return filter
}
