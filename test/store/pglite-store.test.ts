// The Store contract on embedded PGlite (the same migrations and RLS, in process).
import t from 'tap'
import { migrate } from '../../src/db/migrate.ts'
import { PgliteDatabase } from '../../src/db/pglite-database.ts'
import { PostgresStore } from '../../src/store/postgres-store.ts'
import { storeContract } from './store-contract.ts'

storeContract(t, 'PGlite', async () => {
  const db = await PgliteDatabase.open(undefined)
  await migrate(db)
  return { store: new PostgresStore(db), db, close: () => db.close() }
})
