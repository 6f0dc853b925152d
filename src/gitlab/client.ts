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
}

/** Outcomes counted per endpoint (`endpoint:outcome`). */
export type GitlabOutcome = 'ok' | 'rejected' | 'failed' | 'unavailable'

export interface GitlabClient {
  /** `GET path` (an API path such as `/api/v4/projects/12`); rejects with GitlabUnavailable when GitLab gave no answer. */
  get (path: string, call: GitlabCall): Promise<GitlabAnswer>
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

  const request = async (path: string, headers: Record<string, string>): Promise<{ status: number, text: string | undefined }> => {
    try {
      const res = await pool.request({ method: 'GET', path: basePath + path, headers, signal: AbortSignal.timeout(timeoutMs) })
      if (res.statusCode !== 200) {
        await res.body.dump()
        return { status: res.statusCode, text: undefined }
      }
      return { status: 200, text: await readLimited(res.body, maxBytes) }
    } catch (err) {
      throw new GitlabUnavailable(describe(err), { cause: err })
    }
  }

  return {
    async get (path, call) {
      if (call.as === 'service' && serviceToken === undefined) throw new TypeError('a call as the service token needs GATE_SERVICE_TOKEN')
      // A token only ever travels in a header.
      const credential = call.as === 'service' ? { 'private-token': serviceToken! } : call.as
      let answer: { status: number, text: string | undefined }
      try {
        answer = await request(path, { accept: 'application/json', ...credential })
      } catch (err) {
        count(call.endpoint, 'unavailable')
        throw err
      }
      const { status } = answer
      const body = answer.text === undefined ? undefined : jsonObject(answer.text)
      // A refused service token is the gate's configuration failing, not a verdict on a caller.
      count(call.endpoint, status === 429 || status >= 500
        ? 'unavailable'
        : (status === 401 || status === 403) && call.as !== 'service'
            ? 'rejected'
            : status === 200 && body !== undefined ? 'ok' : 'failed')
      return { status, body }
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
