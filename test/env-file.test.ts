// Issue 11, item 8: `npm start` reads `.env` when present (Node's --env-file-if-exists), the real
// environment winning, and says so; the Docker CMD does the same.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot, serverFile, startServer } from './helpers/server-process.ts'
import { TEST_CRON_SECRET } from './helpers/app.ts'

t.setTimeout(300_000)

/** The node flags of `npm start`, with the script path made absolute (the test runs in another folder). */
function startArgs (): string[] {
  const script = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
  const [node, ...args] = script.split(/\s+/)
  t.equal(node, 'node')
  return args.map((a) => (a === 'src/server.ts' ? serverFile : a))
}

t.test('the start script and the Docker CMD pass --env-file-if-exists=.env', async (t) => {
  t.ok(startArgs().includes('--env-file-if-exists=.env'))
  t.match(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'), /CMD \["node", "--env-file-if-exists=\.env",/)
})

t.test('a .env in the working folder is read; the environment wins over it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ws-env-file-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, '.env'), [
    '# comments and empty values are fine',
    'PGLITE_DIR=memory',
    'PORT=0',
    `CRON_SECRET=${TEST_CRON_SECRET}`,
    'LOG_LEVEL=debug',
    'DATABASE_URL=',
    ''
  ].join('\n'))
  const p = await startServer(t, { LOG_LEVEL: 'info' }, { args: startArgs(), cwd: dir })
  t.ok(p.port, p.out.slice(-500))
  t.match(p.out, `settings read from ${join(dir, '.env')}`, 'it says so')
  t.match(p.out, /embedded PGlite in memory/, 'PGLITE_DIR came from .env')
  t.notMatch(p.out, /"level":20/, 'LOG_LEVEL from the environment won over .env')
  const cron = await fetch(`http://127.0.0.1:${p.port}/sync/logs`, { headers: { authorization: `Bearer ${TEST_CRON_SECRET}` } })
  t.equal(cron.status, 200, 'CRON_SECRET came from .env')
  t.equal(await p.stop(), 0)
})

t.test('without .env the start says no file was read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ws-no-env-file-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const p = await startServer(t, { PGLITE_DIR: 'memory', PORT: '0' }, { args: startArgs(), cwd: dir })
  t.ok(p.port, p.out.slice(-500))
  t.match(p.out, /no \.env file read/)
  t.equal(await p.stop(), 0)
})
