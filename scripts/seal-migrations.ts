// `npm run migrations:seal`: at release time, append every migration file not sealed yet to
// supabase/released-migrations.sha256 (see src/db/migration-seal.ts). Commit the result.
import { seal } from '../src/db/migration-seal.ts'

try {
  const added = await seal()
  console.log(added.length ? `sealed: ${added.join(', ')}` : 'every migration is already sealed')
} catch (err) {
  console.error(`not sealed: ${(err as Error).message}`)
  process.exitCode = 1
}
