// @ts-check
// The service's HTTP API from the browser: bearer token, JSON in and out, and every failure as a
// ProblemError carrying the problem's title and detail (application/problem+json).
// Checked by `npm run typecheck` (tsconfig.web.json) against the API's generated types.

/** @typedef {import('../../client/schema.d.ts').components['schemas']['Problem']} Problem */
/**
 * @typedef {object} RequestOptions
 * @property {unknown} [body] sent as JSON
 * @property {Record<string, unknown>} [query] empty values left out
 * @property {Record<string, string>} [headers]
 * @property {string} [token] this bearer instead of getToken's ('' sends none)
 * @property {boolean} [raw] the Response itself, unread
 */

export class ProblemError extends Error {
  /** @param {Partial<Problem> & { title: string }} problem */
  constructor ({ title, detail, status, code, errors, requestId }) {
    super(detail ? `${title}: ${detail}` : title)
    this.title = title
    this.detail = detail ?? ''
    this.status = status ?? 0
    this.code = code ?? 'unknown'
    this.errors = errors ?? []
    this.requestId = requestId
  }
}

/**
 * @param {{ getToken?: () => Promise<string | null | undefined> | string | null | undefined, onUnauthorized?: (err: ProblemError) => void }} options
 */
export function createApi ({ getToken, onUnauthorized = () => {} }) {
  /** @type {{ paths?: Record<string, any> } | undefined} */
  let spec
  /**
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   * @returns {Promise<any>}
   */
  async function request (method, path, { body, query, headers = {}, token, raw = false } = {}) {
    const url = new URL(path, location.origin)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v))
    const bearer = token ?? (getToken ? await getToken() : undefined)
    /** @type {Record<string, string>} */
    const h = { accept: 'application/json', ...headers }
    if (bearer) h.authorization = `Bearer ${bearer}`
    if (body !== undefined) h['content-type'] = 'application/json'
    let res
    try {
      // no-cache: always revalidate; the service's ETag turns an unchanged list into a 304.
      res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-cache' })
    } catch (err) {
      throw new ProblemError({ title: 'The service is unreachable', detail: `${method} ${url.pathname}: ${err instanceof Error ? err.message : String(err)}`, code: 'network' })
    }
    if (raw) return res
    if (res.status === 204) return null
    const text = await res.text()
    let data
    try { data = text ? JSON.parse(text) : null } catch { data = null }
    if (!res.ok) {
      const p = data && typeof data === 'object' && data.title
        ? data
        : { title: `HTTP ${res.status}`, detail: text.slice(0, 300), status: res.status }
      const err = new ProblemError({ ...p, status: res.status })
      if (res.status === 401 && !token) onUnauthorized(err)
      throw err
    }
    return data
  }
  return {
    request,
    /** @type {(path: string, query?: Record<string, unknown>, opts?: RequestOptions) => Promise<any>} */
    get: (path, query, opts) => request('GET', path, { ...opts, query }),
    /** @type {(path: string, body?: unknown, opts?: RequestOptions) => Promise<any>} */
    post: (path, body, opts) => request('POST', path, { ...opts, body }),
    /** @type {(path: string, opts?: RequestOptions) => Promise<any>} */
    del: (path, opts) => request('DELETE', path, opts),
    /** Which optional routes this server has (from its OpenAPI document). */
    async features () {
      spec ??= await request('GET', '/openapi.json', { token: '' }).catch(() => ({ paths: {} }))
      const p = spec?.paths ?? {}
      const listParams = (p['/workflows']?.get?.parameters ?? []).map((/** @type {{ name: string }} */ x) => x.name)
      return {
        run: Boolean(p['/workflows/{id}/run']?.post),
        workflowStats: Boolean(p['/workflows/{id}/stats']?.get),
        stats: Boolean(p['/stats']?.get),
        includeDefinition: listParams.includes('include')
      }
    }
  }
}

/**
 * Every page of a cursor-paged list, up to maxPages.
 * @param {ReturnType<typeof createApi>} api
 * @param {string} path
 * @param {Record<string, unknown>} [query]
 * @returns {Promise<any[]>}
 */
export async function allPages (api, path, query = {}, maxPages = 20) {
  const out = []
  let cursor
  for (let i = 0; i < maxPages; i++) {
    const page = await api.get(path, { ...query, cursor })
    out.push(...page.data)
    cursor = page.next_cursor
    if (!cursor) break
  }
  return out
}
