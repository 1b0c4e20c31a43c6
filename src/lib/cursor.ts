// Page cursors: opaque tokens (base64url of JSON) that only this service issues. Each reader
// checks the decoded shape itself and answers with its own problem when it is not one it issued.

export function encodeCursor (value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** The value a cursor carries, or undefined when it is not base64url JSON at all. */
export function decodeCursor (cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}
