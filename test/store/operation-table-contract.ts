// Part of the Store contract (store-contract.ts): the operation table (src/store/operations.ts)
// that both stores run. Every entry names a SQL function that exists; every call the suite makes
// passes named arguments that the function has, with the table's types, and all the function's
// required ones; the shared methods are the table's (no store overrides one with its own SQL).
import type { Test } from 'tap'
import type { Database } from '../../src/db/database.ts'
import { OperationStore } from '../../src/store/operation-store.ts'
import { OPERATION_NAMES, OPERATIONS } from '../../src/store/operations.ts'
import type { Args, ArgType, Operation } from '../../src/store/operations.ts'
import type { Scope } from '../../src/store/scope.ts'
import type { Store } from '../../src/store/store.ts'

/** How format_type names each argument type of the table. */
const PG_TYPE: Record<ArgType, string> = {
  uuid: 'uuid',
  'uuid[]': 'uuid[]',
  text: 'text',
  'text[]': 'text[]',
  integer: 'integer',
  bigint: 'bigint',
  boolean: 'boolean',
  jsonb: 'jsonb',
  timestamptz: 'timestamp with time zone',
  interval: 'interval'
}

/** The Store methods OperationStore implements from the table, for both stores. */
const SHARED_METHODS = [
  'createWorkflow', 'completeIdempotencyKey', 'beginDeploy', 'recordDeployOutcome', 'updateWorkflowDefinition', 'setWorkflowActive',
  'listSyncTargets', 'ingestExecutions', 'ingestExecutionsBatch', 'ingestScanBatch', 'workflowsWithOpenRows', 'raiseScanFloors',
  'markWorkflowMissing', 'recordSyncLog', 'syncStats', 'executionStats', 'purgeExpiredData', 'ownedN8nWorkflows', 'purgeEventLog',
  'liveTailClaim', 'liveTailIngest', 'liveTailOpenExecutions'
] as const

/** Lease locks are the Supabase store's; the Postgres store holds advisory locks instead. */
const LEASE_OPS = new Set(['tryAcquireLock', 'renewLock', 'releaseLock'])
/** Called only by a lock held past a third of its TTL (supabase-store.test.ts holds one). */
const NOT_IN_SUITE = new Set(['renewLock'])

interface Overload { args: Array<{ name: string, type: string }>, required: number }

async function overloads (db: Database, fns: string[]): Promise<Map<string, Overload[]>> {
  const res = await db.query<{ proname: string, oid: number, name: string, type: string, ord: number, nargs: number, ndefaults: number }>(
    `select p.proname, p.oid::int as oid, a.name, format_type(a.type, null) as type, a.ord::int as ord,
            p.pronargs::int as nargs, p.pronargdefaults::int as ndefaults
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
       cross join lateral unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) with ordinality as a(name, type, ord)
      where n.nspname = 'public' and p.proname = any($1::text[])
      order by p.oid, a.ord`, [fns])
  const byOid = new Map<number, { fn: string, o: Overload }>()
  for (const r of res.rows) {
    let e = byOid.get(r.oid)
    if (!e) {
      e = { fn: r.proname, o: { args: [], required: r.nargs - r.ndefaults } }
      byOid.set(r.oid, e)
    }
    e.o.args.push({ name: r.name, type: r.type })
  }
  const out = new Map<string, Overload[]>()
  for (const { fn, o } of byOid.values()) out.set(fn, [...(out.get(fn) ?? []), o])
  return out
}

/** Why no overload takes this call (undefined: one does). */
function mismatch (found: Overload[], args: Args): string | undefined {
  const reasons: string[] = []
  for (const o of found) {
    const names = new Map(o.args.map((a) => [a.name, a.type]))
    const wrong = Object.entries(args).filter(([n, a]) => names.get(n) !== PG_TYPE[a.type]).map(([n, a]) => `${n}::${a.type} (function: ${names.get(n) ?? 'none'})`)
    const missing = o.args.slice(0, o.required).map((a) => a.name).filter((n) => !(n in args))
    if (wrong.length === 0 && missing.length === 0) return undefined
    reasons.push([...wrong, ...missing.map((n) => `${n} missing`)].join(', '))
  }
  return reasons.join(' | ') || 'no such function'
}

/**
 * Records every call the store makes through the table (its `invoke`), for the checks at the end
 * of the suite. Call before the other subtests; `check` is a subtest to run last.
 */
export function operationTableContract (t: Test, store: Store, db: Database): { check(): void } {
  const calls = new Map<string, Args[]>()
  const spied = store as unknown as { invoke(scope: Scope, op: Operation<never, unknown>, args: Args): Promise<unknown> }
  const invoke = spied.invoke.bind(store)
  spied.invoke = (scope, op, args) => {
    calls.set(op.fn, [...(calls.get(op.fn) ?? []), args])
    return invoke(scope, op, args)
  }

  t.test('operation table: every entry names an existing SQL function; the shared methods are the table\'s', async (t) => {
    t.ok(store instanceof OperationStore, 'the store runs the operation table')
    t.ok(OPERATION_NAMES.length >= SHARED_METHODS.length, 'the table has the shared operations')
    const found = await overloads(db, OPERATION_NAMES.map((n) => OPERATIONS[n].fn))
    for (const name of OPERATION_NAMES) {
      t.ok((found.get(OPERATIONS[name].fn) ?? []).length > 0, `${name}: public.${OPERATIONS[name].fn} exists`)
    }
    const own = store as unknown as Record<string, unknown>
    const shared = OperationStore.prototype as unknown as Record<string, unknown>
    for (const m of SHARED_METHODS) {
      t.equal(typeof shared[m], 'function', `${m} is implemented once, from the table`)
      t.equal(own[m], shared[m], `${m}: this store does not replace it`)
    }
  })

  return {
    check () {
      t.test('operation table: every call of the suite matches its function (named arguments, types, required ones)', async (t) => {
        const found = await overloads(db, OPERATION_NAMES.map((n) => OPERATIONS[n].fn))
        const expected = OPERATION_NAMES.filter((n) => (store.kind === 'supabase' || !LEASE_OPS.has(n)) && !NOT_IN_SUITE.has(n))
        t.ok(expected.length >= SHARED_METHODS.length)
        for (const name of expected) {
          const fn = OPERATIONS[name].fn
          const made = calls.get(fn) ?? []
          t.ok(made.length > 0, `${name} (${fn}) was called by the suite`)
          const bad = made.map((args) => [Object.keys(args).join(', '), mismatch(found.get(fn) ?? [], args)]).filter(([, why]) => why !== undefined)
          t.same(bad, [], `${fn}: every call matches the function`)
        }
      })
    }
  }
}
