// Released migrations never change: supabase/released-migrations.sha256 (sha256sum format) seals
// every migration file of the last release; this fails when one of them changed or is gone, or
// when a new file sorts before a released one. New files are sealed at release with
// `npm run migrations:seal`.
import { cp, mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { readMigrations, MIGRATIONS_DIR } from '../../src/db/migrate.ts'
import { parseSeal, seal, sealProblems, SEAL_FILE } from '../../src/db/migration-seal.ts'

const sealed = parseSeal(await readFile(SEAL_FILE, 'utf8'))

t.test('every released migration is here, unchanged; new ones sort after them', async (t) => {
  t.ok(sealed.length >= 5, `the seal lists the released files (${sealed.length})`)
  t.ok(sealed.some((e) => e.file === 'migrations/20250108000000_workflow_sync_schema.sql'), 'the first release is sealed')
  t.same(sealProblems(sealed, await readMigrations()), [])
})

t.test('the check fails on an edited, a removed and an out-of-order file; seal appends new files only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ws-seal-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const migrations = join(dir, 'migrations')
  await cp(MIGRATIONS_DIR, migrations, { recursive: true })
  const first = sealed[0]!.file
  await appendFile(join(dir, first), '\n-- an innocent-looking edit\n')
  t.match(sealProblems(sealed, await readMigrations(migrations)), [new RegExp(`${first} was released and has changed`)])
  await rm(join(dir, first))
  t.match(sealProblems(sealed, await readMigrations(migrations)), [new RegExp(`${first} was released and is gone`)])
  await cp(join(MIGRATIONS_DIR, first.replace('migrations/', '')), join(dir, first))
  await writeFile(join(migrations, '20250101000000_too_early.sql'), 'select 1;\n')
  t.match(sealProblems(sealed, await readMigrations(migrations)), [/20250101000000_too_early\.sql is new but sorts before the released/])
  await rm(join(migrations, '20250101000000_too_early.sql'))

  const sealFile = join(dir, 'released-migrations.sha256')
  await cp(SEAL_FILE, sealFile)
  await writeFile(join(migrations, '29990101000000_later.sql'), 'select 2;\n')
  const added = await seal(migrations, sealFile)
  t.ok(added.includes('migrations/29990101000000_later.sql'))
  const after = parseSeal(await readFile(sealFile, 'utf8'))
  t.same(after.slice(0, sealed.length), sealed, 'the released entries are kept as they were')
  t.same(sealProblems(after, await readMigrations(migrations)), [])
  t.same(await seal(migrations, sealFile), [], 'nothing to add a second time')
  await appendFile(join(dir, first), '-- edit\n')
  await t.rejects(seal(migrations, sealFile), /has changed/, 'seal refuses while a released file differs')
})
