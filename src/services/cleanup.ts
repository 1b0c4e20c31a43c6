import { serviceScope } from '../store/scope.ts'
import type { PurgeCounts } from '../store/rows.ts'
import type { Store } from '../store/store.ts'
import { AppError, isAppError } from '../errors.ts'
import type { N8nClient, N8nWorkflow } from './n8n-client.ts'
import { isUuid } from '../lib/ids.ts'
import { readMarker } from '../lib/marker.ts'
import { USER_TAG_PREFIX } from '../lib/user-tag.ts'

export type CleanupN8n = Pick<N8nClient, 'iterateWorkflows' | 'deleteWorkflow'>

export interface CleanupOptions {
  /** Where the data lives (Postgres or Supabase); the service scope needs its service access. */
  store: Store
  n8n: CleanupN8n
  logger: { info(obj: object, msg?: string): void, warn(obj: object, msg?: string): void }
  graceMinutes: number
  syncLogRetentionDays: number
  executionRetentionDays: number
  /** Extra purges of other tables (e.g. the event log); each answers how many rows it removed. */
  extraPurges?: Array<{ name: string, run(dryRun: boolean): Promise<number> }>
  now?: () => Date
}

export interface OrphanEntry {
  n8n_workflow_id: string
  name: string
  updated_at: string | null
}

export interface CleanupReport {
  sync_log_id: string | null
  dry_run: boolean
  status: 'success' | 'partial' | 'failed'
  duration_ms: number
  n8n_workflows_scanned: number
  orphans_deleted: OrphanEntry[]
  orphans_in_grace: OrphanEntry[]
  orphans_failed: Array<OrphanEntry & { message: string }>
  purged: { sync_logs: number, executions: number, idempotency_keys: number, [k: string]: number }
  errors: Array<{ code: string, message: string }>
}

/**
 * Housekeeping for the cron route. An orphan is an n8n workflow named `[USR-…` that no row owns:
 * neither by n8n_workflow_id nor through its staticData marker (a create in flight, before the
 * row records the id, is claimed by its marker). It is deleted only once n8n last changed it
 * longer than the grace period ago, so a workflow that is being created or updated is never
 * removed. A workflow without the prefix is never touched.
 */
export class CleanupService {
  private readonly o: CleanupOptions
  private readonly store: Store

  constructor (opts: CleanupOptions) {
    this.o = opts
    this.store = opts.store
  }

  async run (opts: { dryRun: boolean }): Promise<CleanupReport> {
    const lock = await this.store.withLock(serviceScope, { name: 'cleanup' }, () => this.runLocked(opts.dryRun), { wait: false })
    if (!lock.acquired) throw new AppError('conflict', 'A cleanup is already running')
    return lock.value
  }

  private async runLocked (dryRun: boolean): Promise<CleanupReport> {
    const started = performance.now()
    const now = (this.o.now ?? (() => new Date()))()
    const graceCutoff = now.getTime() - this.o.graceMinutes * 60_000
    const report: CleanupReport = {
      sync_log_id: null,
      dry_run: dryRun,
      status: 'success',
      duration_ms: 0,
      n8n_workflows_scanned: 0,
      orphans_deleted: [],
      orphans_in_grace: [],
      orphans_failed: [],
      purged: { sync_logs: 0, executions: 0, idempotency_keys: 0 },
      errors: []
    }

    try {
      const candidates: N8nWorkflow[] = []
      for await (const w of this.o.n8n.iterateWorkflows({ limit: 250 })) {
        report.n8n_workflows_scanned++
        if (typeof w.name === 'string' && w.name.startsWith(USER_TAG_PREFIX)) candidates.push(w)
      }
      for (let i = 0; i < candidates.length; i += 500) {
        const chunk = candidates.slice(i, i + 500)
        const markerIds = chunk.map(markerRowId).filter((x): x is string => x !== null)
        const owned = await this.store.ownedN8nWorkflows(serviceScope, chunk.map((w) => w.id), markerIds)
        for (const w of chunk) {
          const marker = markerRowId(w)
          if (owned.n8nIds.has(w.id) || (marker !== null && owned.rowIds.has(marker))) continue
          const entry: OrphanEntry = { n8n_workflow_id: w.id, name: w.name, updated_at: w.updatedAt ?? w.createdAt ?? null }
          const changed = Date.parse(entry.updated_at ?? '')
          if (!Number.isFinite(changed) || changed > graceCutoff) {
            report.orphans_in_grace.push(entry)
            continue
          }
          if (dryRun) {
            report.orphans_deleted.push(entry)
            continue
          }
          try {
            await this.o.n8n.deleteWorkflow(w.id)
            report.orphans_deleted.push(entry)
            this.o.logger.info({ n8nWorkflowId: w.id }, 'deleted orphaned n8n workflow')
          } catch (err) {
            report.orphans_failed.push({ ...entry, message: errorMessage(err) })
          }
        }
      }
    } catch (err) {
      report.errors.push({ code: isAppError(err) ? err.code : 'internal', message: errorMessage(err) })
    }

    try {
      const counts: PurgeCounts = await this.store.purgeExpiredData(serviceScope, this.o.syncLogRetentionDays, this.o.executionRetentionDays, dryRun)
      report.purged.sync_logs = Number(counts.sync_logs)
      report.purged.executions = Number(counts.executions)
      report.purged.idempotency_keys = Number(counts.idempotency_keys)
      for (const extra of this.o.extraPurges ?? []) report.purged[extra.name] = await extra.run(dryRun)
    } catch (err) {
      report.errors.push({ code: isAppError(err) ? err.code : 'database_error', message: errorMessage(err) })
    }

    const failures = report.errors.length + report.orphans_failed.length
    report.status = failures === 0 ? 'success' : (report.errors.length >= 2 ? 'failed' : 'partial')
    report.duration_ms = Math.round(performance.now() - started)
    if (!dryRun) {
      report.sync_log_id = await this.store.recordSyncLog(serviceScope, {
        sync_type: 'cleanup',
        status: report.status,
        duration_ms: report.duration_ms,
        workflows_synced: report.orphans_deleted.length,
        workflows_failed: report.orphans_failed.length,
        executions_ingested: 0,
        error: report.errors.map((e) => e.message).join('; ') || null,
        details: {
          orphans_deleted: report.orphans_deleted.map((o) => o.n8n_workflow_id),
          orphans_in_grace: report.orphans_in_grace.map((o) => o.n8n_workflow_id),
          orphans_failed: report.orphans_failed.map((o) => o.n8n_workflow_id),
          purged: report.purged
        },
        user_id: null
      })
    }
    return report
  }
}

function markerRowId (w: N8nWorkflow): string | null {
  const id = readMarker(w.staticData).rowId
  return isUuid(id) ? id : null
}

function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
