// web/ held in memory for the dashboard plugin: the files are small and fixed at deploy time, so
// they are read, versioned and compressed once at boot instead of per request.
// Versioning: one version for all of web/ (a hash of every file). The modules' relative imports
// and index.html's preloads and stylesheet get `?v=<version>`, and a request carrying the current
// version is cacheable for a year (immutable): a reload takes them from the browser's cache with
// no round trip. Any change to any file changes every versioned URL, so a deploy is never served
// stale. The entry (/js/main.js) and index.html keep their plain URLs and are revalidated (no-cache
// + ETag, a 304 when unchanged); so is any request without the current version (an old page).
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { extname, join, relative, sep } from 'node:path'
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'

export interface Asset {
  body: Buffer
  type: string
  etag: string
  /** Precompressed bodies, when worth it (brotli for browsers, gzip for the rest). */
  br?: Buffer
  gzip?: Buffer
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8'
}
const IMMUTABLE = 'public, max-age=31536000, immutable'
const MIN_COMPRESS = 1024 // below about one packet, compression saves nothing

const hash = (b: Buffer | string): string => createHash('sha256').update(b).digest('base64url').slice(0, 16)

function asset (name: string, body: Buffer): Asset {
  const a: Asset = { body, type: TYPES[extname(name)] ?? 'application/octet-stream', etag: `"${hash(body)}"` }
  if (body.length >= MIN_COMPRESS && a.type.startsWith('text/')) {
    a.br = brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } })
    a.gzip = gzipSync(body, { level: 9 })
  }
  return a
}

async function walk (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await walk(p))
    else if (e.isFile()) out.push(p)
  }
  return out.sort()
}

/** Adds `?v=<version>` to the same-directory module imports (`from './x.js'`, `import('./x.js')`). */
export function versionImports (js: string, version: string): string {
  return js.replace(/(\bfrom\s*|\bimport\s*\(\s*)(['"])(\.\/[\w./-]+\.js)\2/g, (_m, pre: string, q: string, spec: string) => `${pre}${q}${spec}?v=${version}${q}`)
}

/** Adds `?v=<version>` to index.html's stylesheet and module preloads (not to the entry script). */
export function versionLinks (html: string, version: string): string {
  return html.replace(/(<link rel="(?:stylesheet|modulepreload)" href=")(\/[\w./-]+\.(?:css|js))"/g, (_m, pre: string, url: string) => `${pre}${url}?v=${version}"`)
}

/** Every file of `root` by URL path (`/js/main.js`), rewritten for the version, with that version. */
export async function loadWebAssets (root: string): Promise<{ version: string, files: Map<string, Asset> }> {
  const raw = new Map<string, Buffer>()
  for (const p of await walk(root)) raw.set(`/${relative(root, p).split(sep).join('/')}`, await readFile(p))
  const h = createHash('sha256')
  for (const [url, body] of raw) h.update(url).update('\0').update(body).update('\0')
  const version = h.digest('hex').slice(0, 12)
  const files = new Map<string, Asset>()
  for (const [url, body] of raw) {
    const text = url.endsWith('.js') ? versionImports(body.toString('utf8'), version) : url.endsWith('.html') ? versionLinks(body.toString('utf8'), version) : undefined
    files.set(url, asset(url, text === undefined ? body : Buffer.from(text)))
  }
  return { version, files }
}

/**
 * The page with the config as a JSON data block (not executed, so the CSP allows it). Sent
 * uncompressed: it is built per request and a few KB; the precompressed page lacks the config.
 */
export function inlineConfig (html: Buffer, json: string): Asset {
  // `<` escaped: the JSON cannot close the element (`</script>`) or open a comment.
  const block = `<script type="application/json" id="dashboard-config">${json.replace(/</g, '\\u003c')}</script>\n`
  const body = Buffer.from(html.toString('utf8').replace('</head>', `${block}</head>`))
  return { body, type: TYPES['.html']!, etag: `"${hash(body)}"` }
}

function acceptsEncoding (header: string | undefined, enc: string): boolean {
  return header !== undefined && new RegExp(`(?:^|,)\\s*${enc}\\s*(?:;\\s*q\\s*=\\s*(?!0(?:\\.0*)?\\s*(?:,|$))[\\d.]+)?\\s*(?:,|$)`, 'i').test(header)
}

/** Sends an asset: immutable when asked for at the current version, else revalidated by ETag; compressed when accepted. */
export function sendAsset (request: FastifyRequest, reply: FastifyReply, a: Asset, version: string | undefined): FastifyReply {
  const accept = request.headers['accept-encoding']
  const enc = a.br && acceptsEncoding(accept, 'br') ? 'br' : a.gzip && acceptsEncoding(accept, 'gzip') ? 'gzip' : undefined
  // Each encoding is its own representation, with its own ETag.
  const etag = enc ? `${a.etag.slice(0, -1)}-${enc}"` : a.etag
  const v = (request.query as { v?: unknown } | undefined)?.v
  reply.header('cache-control', version !== undefined && v === version ? IMMUTABLE : 'no-cache')
  reply.header('etag', etag)
  if (a.br || a.gzip) {
    const vary = reply.getHeader('vary') // kept: CORS may vary on Origin
    reply.header('vary', vary ? `${String(vary)}, accept-encoding` : 'accept-encoding')
  }
  const inm = request.headers['if-none-match']
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return reply.code(304).send()
  reply.type(a.type)
  if (enc) reply.header('content-encoding', enc)
  return reply.send(enc === 'br' ? a.br : enc === 'gzip' ? a.gzip : a.body)
}
