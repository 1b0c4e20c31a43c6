import { z } from 'zod'

/** A page cursor: an opaque token (base64url) that only this service issues; empty means the first page. */
export const cursorParam = (max: number) => z.string().max(max)
  .regex(/^[A-Za-z0-9_-]*$/, 'must be a next_cursor value returned by this endpoint')
  .optional()
  .describe('Opaque token: the `next_cursor` of the previous page, passed back unchanged (do not build or parse it)')
