// The service's HTTP API from the browser: bearer token, JSON in and out, and every failure as a
// ProblemError carrying the problem's title and detail (application/problem+json).
export class ProblemError extends Error {
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

export function createApi ({ getToken, onUnauthorized = () => {} }) {
  let spec
  async function request (method, path, { body, query, headers = {}, token, raw = false } = {}) {
    const url = new URL(path, location.origin)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v))
    const bearer = token ?? (getToken ? await getToken() : undefined)
    const h = { accept: 'application/json', ...headers }
    if (bearer) h.authorization = `Bearer ${bearer}`
    if (body !== undefined) h['content-type'] = 'application/json'
    let res
    try {
      // no-cache: always revalidate; the service's ETag turns an unchanged list into a 304.
      res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-cache' })
    } catch (err) {
      throw new ProblemError({ title: 'The service is unreachable', detail: `${method} ${url.pathname}: ${err.message}`, code: 'network' })
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
    get: (path, query, opts) => request('GET', path, { ...opts, query }),
    post: (path, body, opts) => request('POST', path, { ...opts, body }),
    del: (path, opts) => request('DELETE', path, opts),
    /** Which optional routes this server has (from its OpenAPI document). */
    async features () {
      spec ??= await request('GET', '/openapi.json', { token: '' }).catch(() => ({ paths: {} }))
      const p = spec.paths ?? {}
      const listParams = (p['/workflows']?.get?.parameters ?? []).map((x) => x.name)
      return {
        run: Boolean(p['/workflows/{id}/run']?.post),
        workflowStats: Boolean(p['/workflows/{id}/stats']?.get),
        stats: Boolean(p['/stats']?.get),
        includeDefinition: listParams.includes('include')
      }
    }
  }
}

/** Every page of a cursor-paged list, up to maxPages. */
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
