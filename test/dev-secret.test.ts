// Issue 11, item 2: the generated development secret lives beside the embedded database, so a
// restart keeps tokens valid; in memory mode it is generated per process.
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startServer } from './helpers/server-process.ts'
import { devSecretPath, loadDevSecret } from '../src/dev-secret.ts'
import { configSchema } from '../src/config.ts'

// Both the printed token and the log line naming the file (pino may write it after the token).
// Four spawned boots of a fresh embedded database: slow on a busy machine.
t.setTimeout(300_000)

const untilToken = /(\n {2}eyJ[\w-]+\.[\w-]+\.[\w-]+\n[\s\S]*development secret.*\n)|(development secret.*\n[\s\S]*\n {2}eyJ[\w-]+\.[\w-]+\.[\w-]+\n)/

t.test('two boots on the same PGLITE_DIR accept the same token', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ws-dev-secret-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { PORT: '0', PGLITE_DIR: join(dir, 'pglite') }
  const first = await startServer(t, env, { until: untilToken })
  t.ok(first.token && first.port, first.out.slice(-500))
  const file = join(dir, 'pglite', '.dev-jwt-secret')
  t.match(first.out, `kept in ${file} (created now)`, 'the boot log says where the secret lives')
  t.equal(statSync(file).mode & 0o777, 0o600, 'file mode 0600')
  t.notMatch(first.out, readFileSync(file, 'utf8').trim(), 'the secret itself is never printed')
  t.equal(await first.stop(), 0)

  const second = await startServer(t, env, { until: untilToken })
  t.ok(second.port, second.out.slice(-500))
  t.match(second.out, `kept in ${file} (reused)`)
  const me = await fetch(`http://127.0.0.1:${second.port}/me`, { headers: { authorization: `Bearer ${first.token}` } })
  t.equal(me.status, 200, 'the first boot\'s token is valid after the restart')
  t.equal(await second.stop(), 0)
})

t.test('memory mode and server databases keep no file: a new secret per process', async (t) => {
  const env = (over: Record<string, string>) => configSchema.parse(over)
  t.equal(devSecretPath(env({ PGLITE_DIR: 'memory' })), null)
  t.equal(devSecretPath(env({ DATABASE_URL: 'postgres://x@127.0.0.1/db' })), null)
  const a = loadDevSecret(env({ PGLITE_DIR: 'memory' }))
  const b = loadDevSecret(env({ PGLITE_DIR: 'memory' }))
  t.equal(a.path, null)
  t.not(a.secret, b.secret)
  t.ok(a.secret.length >= 32)
})
