// Released migrations are sealed: supabase/released-migrations.sha256 lists, in `sha256sum`
// format, every migration file of the last release with its checksum. A sealed file is never
// edited or removed (databases out there have applied it; both the service and the Supabase CLI
// go by its version), and a new file must sort after every sealed one (the CLI refuses to insert
// a migration before the last applied one). `npm run migrations:seal` appends the files that are
// not sealed yet, at release time. Checked by test/db/released-migrations.test.ts.
import { readFile, writeFile } from 'node:fs/promises'
import { checksumOf, MIGRATIONS_DIR, readMigrations } from './migrate.ts'
import type { MigrationFile } from './migrate.ts'

export const SEAL_FILE = new URL('../../supabase/released-migrations.sha256', import.meta.url).pathname

export interface SealEntry { checksum: string, file: string }

export function parseSeal (text: string): SealEntry[] {
  const out: SealEntry[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue
    const m = /^([0-9a-f]{64}) [ *](migrations\/\d+_.+\.sql)$/.exec(line)
    if (!m) throw new Error(`released-migrations.sha256: not a "<sha256>  migrations/<file>.sql" line: ${line}`)
    out.push({ checksum: m[1] as string, file: m[2] as string })
  }
  return out
}

const fileOf = (m: MigrationFile): string => `migrations/${m.version}_${m.name}.sql`

/** What breaks the seal: sealed files changed or gone, new files sorting before sealed ones. */
export function sealProblems (sealed: SealEntry[], files: MigrationFile[]): string[] {
  const problems: string[] = []
  const byFile = new Map(files.map((f) => [fileOf(f), f]))
  for (const e of sealed) {
    const f = byFile.get(e.file)
    if (!f) problems.push(`${e.file} was released and is gone: released migrations are never removed`)
    else if (checksumOf(f.sql) !== e.checksum) problems.push(`${e.file} was released and has changed (sha256 differs): add a new migration instead`)
  }
  const last = sealed.map((e) => e.file).sort().at(-1)
  const sealedSet = new Set(sealed.map((e) => e.file))
  for (const f of files) {
    if (!sealedSet.has(fileOf(f)) && last !== undefined && fileOf(f) < last) {
      problems.push(`${fileOf(f)} is new but sorts before the released ${last}: give it a later timestamp`)
    }
  }
  return problems
}

/** `npm run migrations:seal`: appends the unsealed files (refuses while the seal is broken). */
export async function seal (dir: string = MIGRATIONS_DIR, sealFile: string = SEAL_FILE): Promise<string[]> {
  const text = await readFile(sealFile, 'utf8').catch(() => '')
  const sealed = parseSeal(text)
  const files = await readMigrations(dir)
  const problems = sealProblems(sealed, files)
  if (problems.length > 0) throw new Error(problems.join('\n'))
  const have = new Set(sealed.map((e) => e.file))
  const added = files.filter((f) => !have.has(fileOf(f)))
  if (added.length === 0) return []
  const lines = added.map((f) => `${f.checksum}  ${fileOf(f)}`)
  await writeFile(sealFile, (text === '' || text.endsWith('\n') ? text : text + '\n') + lines.join('\n') + '\n')
  return added.map(fileOf)
}
