// The gate's own calls to GitLab's API: job introspection and namespace lookups for the identity
// stage, project, group and user lookups for the configuration API and the package-rule role
// checks, lists (one page or many) for the project resolvers. createGate builds one client per
// gate and hands it to every caller; one undici Pool per GitLab, with as many connections as the
// gate's listeners take client connections (src/gate/deps.ts), every call bounded by one timeout,
// bodies read up to a limit, counted by endpoint and outcome for /metrics
// (job_token_gate_gitlab_requests_total). Callers map an answer to their own errors; this module
// only says whether GitLab answered and what. A call is retried only where a GET met a connection
// closed under it before any answer (closedUnderCall). Calls past the pool's connections wait in
// this module's queue; a call whose caller gave up (its `signal`) leaves it unsent, or is aborted
// if sent.
//
// The forwarding of API traffic (src/proxy/forward.ts) keeps its own Pool on purpose: it is the
// data path (streamed bodies of any size, the client's timeouts, its own pool metrics), and the
// gate's lookups must not queue behind uploads nor uploads behind lookups.
//
// Where the API is: `<GATE_UPSTREAM_URL><GATE_RELATIVE_URL_ROOT>/api/v4`, the place the proxy
// sends API requests to (it forwards the canonical path, relative root included, under the
// upstream URL's own path). Paths given to get() and getList() start at `/api/v4`; post() is for
// GitLab's GraphQL endpoint, `/api/graphql`, beside it.

import { Pool, type Dispatcher } from 'undici'

export interface GitlabClientOptions {
  /** GATE_UPSTREAM_URL: the GitLab the gate forwards to, with any path of its own (`http://gitlab-webservice:8181`). */
  readonly url: string
  /** GATE_RELATIVE_URL_ROOT (`/gitlab`), or ''; appended to the URL's path. */
  readonly relativeUrlRoot?: string
  /** GATE_SERVICE_TOKEN, sent as PRIVATE-TOKEN by calls made `as: 'service'`. */
  readonly serviceToken?: string
  /** Bound on each call: connect, headers and body. Default 5 s. */
  readonly timeoutMs?: number
  /**
   * Most connections to GitLab; default none (no limit): anyone can make the gate ask GitLab
   * (a new job token string is a /job call), and with a small limit (16), that many calls GitLab
   * is slow to answer held every other lookup in the queue until its timeout. The gate gives as
   * many as its listeners take client connections (src/gate/deps.ts), so that calls outliving
   * their clients cannot take every descriptor.
   */
  readonly connections?: number
  /** Longest body read. Default 1 MiB; a longer one is an unavailable answer. */
  readonly maxResponseBytes?: number
}

export interface GitlabCall {
  /** A bounded label for metrics: `job`, `project`, `group`, `user`, ... never a path or id. */
  readonly endpoint: string
  /** Whose credential the call carries: the caller's headers, or the service token. */
  readonly as: Readonly<Record<string, string>> | 'service'
  /** Longest body read for this call, where a document may be larger than the client's default. */
  readonly maxResponseBytes?: number
  /**
   * Aborted once nobody waits for the answer (every client whose request asked it has gone): a
   * call waiting for a connection leaves the queue unsent, one sent is given up and its
   * connection closed; it rejects with GitlabUnavailable `cancelled`, counted `cancelled`.
   */
  readonly signal?: AbortSignal
}

export interface GitlabAnswer {
  readonly status: number
  /** The JSON object of a 200 answer; undefined for any other status or body. */
  readonly body: Readonly<Record<string, unknown>> | undefined
  /** The Location header of a redirect (3xx), not followed: the caller decides. */
  readonly location?: string
}

/**
 * False when an answer naming `id` cannot be the one asked for by `asked`, a URL segment: digits
 * are an id to GitLab (leading zeros and all), and ids never move, so an answer for another id
 * came from something in front of GitLab that mixed answers up. A path is not compared.
 */
export function answersAsked (asked: string, id: number): boolean {
  return !/^\d+$/.test(asked) || String(id) === asked.replace(/^0+(?=\d)/, '')
}

/**
 * The id GitLab's redirect for a moved project's old path names: `Location` is
 * `/api/v4/projects/<id>` (lib/api/helpers.rb); undefined for any other place.
 */
export function movedProjectId (location: string | undefined): string | undefined {
  return /\/api\/v4\/projects\/(\d+)\/?$/.exec(location ?? '')?.[1]
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
export type GitlabOutcome = 'ok' | 'rejected' | 'failed' | 'unavailable' | 'cancelled'

export interface GitlabClient {
  /** `GET path` (an API path such as `/api/v4/projects/12`); rejects with GitlabUnavailable when GitLab gave no answer. */
  get (path: string, call: GitlabCall): Promise<GitlabAnswer>
  /**
   * `GET path` of a list, following GitLab's offset pagination (`per_page=100`, `X-Next-Page`)
   * for at most `maxPages` pages (default 10); rejects with GitlabUnavailable like get().
   */
  getList (path: string, call: GitlabCall, options?: { readonly maxPages?: number }): Promise<GitlabListAnswer>
  /**
   * `POST path` with a JSON body (GraphQL queries at `/api/graphql`: reads that do not fit a
   * URL); the answer is read as get()'s. Never asked twice, not even on a connection closed under
   * it (a GET is). Optional only for stand-ins in tests and benchmarks: createGitlabClient's
   * client has it.
   */
  post? (path: string, body: unknown, call: GitlabCall): Promise<GitlabAnswer>
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
  const root = options.relativeUrlRoot ?? ''
  if (root !== '' && (!root.startsWith('/') || root.endsWith('/'))) throw new TypeError(`relative URL root must be '' or start with '/' and not end with '/', got ${JSON.stringify(root)}`)
  const basePath = base.pathname.replace(/\/+$/, '') + root
  const timeoutMs = options.timeoutMs ?? 5_000
  const maxBytes = options.maxResponseBytes ?? 1 << 20
  const serviceToken = options.serviceToken === '' ? undefined : options.serviceToken
  const connections = options.connections ?? null
  const pool = new Pool(base.origin, {
    connections,
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs
  })
  // Calls past `connections` wait here, first come first served, not in undici's queue: there a
  // request whose signal was aborted (its timeout, or every waiter gone) stayed queued until a
  // connection took it, and was then aborted on that connection, closing it. A call waited past
  // its timeout that way, and a call nobody waited for any more kept its place ahead of live ones.
  // Here a call leaves the queue the moment its signal is aborted, never sent.
  let free = connections ?? Infinity
  const queue = new Set<() => void>()
  const turn = async (signal: AbortSignal): Promise<void> => {
    signal.throwIfAborted()
    if (free > 0) {
      free--
      return
    }
    await new Promise<void>((resolve, reject) => {
      const start = (): void => {
        signal.removeEventListener('abort', leave)
        resolve()
      }
      const leave = (): void => {
        queue.delete(start)
        reject(signal.reason)
      }
      queue.add(start)
      signal.addEventListener('abort', leave, { once: true })
    })
  }
  /** A call's connection is free: the next waiting call takes it. */
  const done = (): void => {
    const next = queue.values().next()
    if (next.done === true) {
      free++
      return
    }
    queue.delete(next.value)
    next.value()
  }
  const counts: Record<string, number> = {}
  const count = (endpoint: string, outcome: GitlabOutcome): void => {
    const k = `${endpoint}:${outcome}`
    counts[k] = (counts[k] ?? 0) + 1
  }

  /** `next`: the query of the next page (GitLab's `X-Next-Page`, or the query of `Link: <...>; rel="next"`). */
  type Raw = { status: number, text: string | undefined, location?: string, next?: string | null }
  const request = async (path: string, headers: Record<string, string>, body?: string, limit = maxBytes, cancel?: AbortSignal): Promise<Raw> => {
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = cancel === undefined ? timeout : AbortSignal.any([timeout, cancel])
    const ask = async (): Promise<Dispatcher.ResponseData> => await pool.request({ method: body === undefined ? 'GET' : 'POST', path: basePath + path, headers, ...(body === undefined ? {} : { body }), signal })
    let waited = true
    try {
      await turn(signal)
      waited = false
      let res: Dispatcher.ResponseData
      try {
        res = await ask()
      } catch (err) {
        if (body !== undefined || signal.aborted || !closedUnderCall(err)) throw err
        res = await ask()
      }
      if (res.statusCode !== 200) {
        await res.body.dump()
        const location = res.statusCode >= 300 && res.statusCode < 400 ? res.headers.location : undefined
        return { status: res.statusCode, text: undefined, ...(typeof location === 'string' ? { location } : {}) }
      }
      const next = nextPageQuery(path, res.headers['x-next-page'], res.headers.link)
      return { status: 200, text: await readLimited(res.body, limit), ...(next === undefined ? {} : { next }) }
    } catch (err) {
      throw new GitlabUnavailable(cancel?.aborted === true && !timeout.aborted ? 'cancelled' : describe(err), { cause: err })
    } finally {
      if (!waited) done()
    }
  }

  /** One counted call; `parse` reads a 200's text, undefined when it is not the expected JSON. */
  const call = async <T>(path: string, c: GitlabCall, parse: (text: string) => T | undefined, body?: string): Promise<{ raw: Raw, value: T | undefined }> => {
    if (c.as === 'service' && serviceToken === undefined) throw new TypeError('a call as the service token needs GATE_SERVICE_TOKEN')
    // A token only ever travels in a header.
    const credential = c.as === 'service' ? { 'private-token': serviceToken! } : c.as
    let raw: Raw
    try {
      raw = await request(path, { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...credential }, body, c.maxResponseBytes, c.signal)
    } catch (err) {
      count(c.endpoint, (err as GitlabUnavailable).reason === 'cancelled' ? 'cancelled' : 'unavailable')
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
      const q = path.indexOf('?')
      const endpointPath = q === -1 ? path : path.slice(0, q)
      let next = `${path}${q === -1 ? '?' : '&'}per_page=100`
      for (let n = 0; n < maxPages; n++) {
        const { raw, value } = await call(next, c, jsonArray)
        if (raw.status !== 200 || value === undefined) return { status: raw.status, items: undefined, truncated: false }
        items.push(...value)
        if (raw.next === undefined) return { status: 200, items, truncated: false }
        // A next page that cannot be read: the list is not known whole.
        if (raw.next === null) return { status: 200, items: undefined, truncated: false }
        // The next page is asked of the same endpoint, whatever host or path a Link names.
        next = endpointPath + raw.next
      }
      return { status: 200, items, truncated: true }
    },
    async post (path, body, c) {
      const { raw, value } = await call(path, c, jsonObject, JSON.stringify(body))
      return { status: raw.status, body: value }
    },
    hasServiceToken: serviceToken !== undefined,
    stats: () => ({ ...counts }),
    async close () {
      await pool.close()
    }
  }
}

/**
 * A kept-alive connection closed by GitLab's side as a call was sent on it: GitLab's idle timeout
 * ran out as the call left (or ran out while this process's event loop was held, the close not yet
 * read), so the call failed with no answer begun. A GET is then asked once more, on a new
 * connection, within the call's one timeout, as Go's HTTP client and nginx's upstream retries do;
 * a POST is not. A refused connection, a timeout or an answer are never asked again.
 */
function closedUnderCall (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET'
}

function jsonObject (text: string): Record<string, unknown> | undefined {
  try {
    const body: unknown = JSON.parse(text)
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>
  } catch {}
  return undefined
}

/**
 * The query of the next page, undefined on the last, null when it cannot be read: `X-Next-Page`
 * (offset pagination: the request's query with `page` replaced), else the query of the `Link`
 * header's `rel="next"` (keyset pagination, which sends no `X-Next-Page`).
 */
function nextPageQuery (path: string, nextPage: string | string[] | undefined, link: string | string[] | undefined): string | undefined | null {
  const q = path.indexOf('?')
  if (typeof nextPage === 'string' && nextPage !== '') {
    if (!/^[1-9]\d{0,8}$/.test(nextPage)) return null
    const params = new URLSearchParams(q === -1 ? '' : path.slice(q + 1))
    params.set('page', nextPage)
    return `?${params.toString()}`
  }
  for (const part of (Array.isArray(link) ? link.join(',') : link ?? '').split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part)
    if (m === null || !/(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(m[2]!)) continue
    try {
      const search = new URL(m[1]!, 'http://gitlab').search
      return search === '' ? null : search
    } catch {
      return null
    }
  }
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
  // A DOMException's code is a legacy number (AbortSignal.timeout's is 23): its name says more.
  return String(typeof e?.code === 'string' ? e.code : e?.name ?? 'error')
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
