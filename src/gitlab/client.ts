// The gate's own calls to GitLab's API (not the forwarding, which is src/proxy/forward.ts):
// job introspection and namespace lookups for the identity stage, project and user lookups for
// the configuration API and the package-rule role checks. One undici Pool per GitLab, every call
// bounded by one timeout, bodies read up to a limit, never retried, and counted by endpoint and
// outcome for metrics. Callers map an answer to their own errors; this module only says whether
// GitLab answered and what.

import { Pool } from 'undici'

export interface GitlabClientOptions {
  /** GitLab's base URL, with any path prefix (`https://gitlab.example.com`, `http://host/gitlab`). */
  readonly url: string
  /** GATE_SERVICE_TOKEN, sent as PRIVATE-TOKEN by calls made `as: 'service'`. */
  readonly serviceToken?: string
  /** Bound on each call: connect, headers and body. Default 5 s. */
  readonly timeoutMs?: number
  readonly connections?: number
  /** Longest body read. Default 1 MiB; a longer one is an unavailable answer. */
  readonly maxResponseBytes?: number
}

export interface GitlabCall {
  /** A bounded label for metrics: `job`, `project`, `group`, `user`, ... never a path or id. */
  readonly endpoint: string
  /** Whose credential the call carries: the caller's headers, or the service token. */
  readonly as: Readonly<Record<string, string>> | 'service'
}

export interface GitlabAnswer {
  readonly status: number
  /** The JSON object of a 200 answer; undefined for any other status or body. */
  readonly body: Readonly<Record<string, unknown>> | undefined
  /** The Location header of a redirect (3xx), not followed: the caller decides. */
  readonly location?: string
}

/** A JSON array answer, every page of it read. */
export interface GitlabListAnswer {
  /** 200, or the status of the first page that answered otherwise. */
  readonly status: number
  /** Every item of every page; undefined unless every page was a 200 with a JSON array. */
  readonly items: ReadonlyArray<Readonly<Record<string, unknown>>> | undefined
  /** More pages remained after `maxPages`. */
  readonly truncated: boolean
}

/** Outcomes counted per endpoint (`endpoint:outcome`). */
export type GitlabOutcome = 'ok' | 'rejected' | 'failed' | 'unavailable'

export interface GitlabClient {
  /** `GET path` (an API path such as `/api/v4/projects/12`); rejects with GitlabUnavailable when GitLab gave no answer. */
  get (path: string, call: GitlabCall): Promise<GitlabAnswer>
  /**
   * `GET path` of a list, following GitLab's offset pagination (`per_page=100`, `X-Next-Page`)
   * for at most `maxPages` pages (default 10); rejects with GitlabUnavailable like get().
   */
  getList (path: string, call: GitlabCall, options?: { readonly maxPages?: number }): Promise<GitlabListAnswer>
  readonly hasServiceToken: boolean
  /** Calls keyed `endpoint:outcome`, read at scrape time. */
  stats (): Readonly<Record<string, number>>
  close (): Promise<void>
}

/** No answer from GitLab: refused or reset connection, timeout, a body too large to read. */
export class GitlabUnavailable extends Error {
  /** A short cause for logs: an error code or name, never a token. */
  readonly reason: string

  constructor (reason: string, options?: { cause?: unknown }) {
    super(`GitLab did not answer: ${reason}`, options)
    this.name = 'GitlabUnavailable'
    this.reason = reason
  }
}

export function createGitlabClient (options: GitlabClientOptions): GitlabClient {
  let base: URL
  try {
    base = new URL(options.url)
  } catch {
    throw new TypeError(`GitLab URL is not a URL: ${options.url}`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`GitLab URL must be http(s), got ${base.protocol}`)
  const basePath = base.pathname.replace(/\/+$/, '')
  const timeoutMs = options.timeoutMs ?? 5_000
  const maxBytes = options.maxResponseBytes ?? 1 << 20
  const serviceToken = options.serviceToken === '' ? undefined : options.serviceToken
  const pool = new Pool(base.origin, {
    connections: options.connections ?? 16,
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs
  })
  const counts: Record<string, number> = {}
  const count = (endpoint: string, outcome: GitlabOutcome): void => {
    const k = `${endpoint}:${outcome}`
    counts[k] = (counts[k] ?? 0) + 1
  }

  type Raw = { status: number, text: string | undefined, location?: string, nextPage?: string }
  const request = async (path: string, headers: Record<string, string>): Promise<Raw> => {
    try {
      const res = await pool.request({ method: 'GET', path: basePath + path, headers, signal: AbortSignal.timeout(timeoutMs) })
      if (res.statusCode !== 200) {
        await res.body.dump()
        const location = res.statusCode >= 300 && res.statusCode < 400 ? res.headers.location : undefined
        return { status: res.statusCode, text: undefined, ...(typeof location === 'string' ? { location } : {}) }
      }
      const next = res.headers['x-next-page']
      return { status: 200, text: await readLimited(res.body, maxBytes), ...(typeof next === 'string' && next !== '' ? { nextPage: next } : {}) }
    } catch (err) {
      throw new GitlabUnavailable(describe(err), { cause: err })
    }
  }

  /** One counted call; `parse` reads a 200's text, undefined when it is not the expected JSON. */
  const call = async <T>(path: string, c: GitlabCall, parse: (text: string) => T | undefined): Promise<{ raw: Raw, value: T | undefined }> => {
    if (c.as === 'service' && serviceToken === undefined) throw new TypeError('a call as the service token needs GATE_SERVICE_TOKEN')
    // A token only ever travels in a header.
    const credential = c.as === 'service' ? { 'private-token': serviceToken! } : c.as
    let raw: Raw
    try {
      raw = await request(path, { accept: 'application/json', ...credential })
    } catch (err) {
      count(c.endpoint, 'unavailable')
      throw err
    }
    const { status } = raw
    const value = raw.text === undefined ? undefined : parse(raw.text)
    // A refused service token is the gate's configuration failing, not a verdict on a caller.
    count(c.endpoint, status === 429 || status >= 500
      ? 'unavailable'
      : (status === 401 || status === 403) && c.as !== 'service'
          ? 'rejected'
          : status === 200 && value !== undefined ? 'ok' : 'failed')
    return { raw, value }
  }

  return {
    async get (path, c) {
      const { raw, value } = await call(path, c, jsonObject)
      return { status: raw.status, body: value, ...(raw.location === undefined ? {} : { location: raw.location }) }
    },
    async getList (path, c, options = {}) {
      const maxPages = options.maxPages ?? 10
      const items: Array<Readonly<Record<string, unknown>>> = []
      let page = '1'
      for (let n = 0; n < maxPages; n++) {
        const { raw, value } = await call(`${path}${path.includes('?') ? '&' : '?'}per_page=100&page=${page}`, c, jsonArray)
        if (raw.status !== 200 || value === undefined) return { status: raw.status, items: undefined, truncated: false }
        items.push(...value)
        if (raw.nextPage === undefined) return { status: 200, items, truncated: false }
        if (!/^\d{1,9}$/.test(raw.nextPage)) return { status: 200, items: undefined, truncated: false }
        page = raw.nextPage
      }
      return { status: 200, items, truncated: true }
    },
    hasServiceToken: serviceToken !== undefined,
    stats: () => ({ ...counts }),
    async close () {
      await pool.close()
    }
  }
}

function jsonObject (text: string): Record<string, unknown> | undefined {
  try {
    const body: unknown = JSON.parse(text)
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>
  } catch {}
  return undefined
}

function jsonArray (text: string): Array<Record<string, unknown>> | undefined {
  try {
    const body: unknown = JSON.parse(text)
    if (Array.isArray(body) && body.every(item => item !== null && typeof item === 'object' && !Array.isArray(item))) return body as Array<Record<string, unknown>>
  } catch {}
  return undefined
}

function describe (err: unknown): string {
  const e = err as { code?: unknown, name?: unknown } | null
  return String(e?.code ?? e?.name ?? 'error')
}

async function readLimited (body: AsyncIterable<Buffer>, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.length
    if (total > max) throw Object.assign(new Error('response too large'), { code: 'RESPONSE_TOO_LARGE' })
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, total).toString('utf8')
}
