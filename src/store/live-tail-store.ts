// The live tail's rows live in rows.ts and its SQL functions in the operation table
// (operations.ts); re-exported here for older importers.
export type { LiveTailState, LiveTailWrite, LiveTailWriteResult, OpenExecution, TailIdentity } from './rows.ts'
export { tailItems } from './operations.ts'
