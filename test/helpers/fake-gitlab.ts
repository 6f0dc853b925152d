// A small fake GitLab for identity tests, on port 0: `GET /api/v4/job` (JOB-TOKEN),
// `GET /api/v4/projects/:id` and `GET /api/v4/groups/:id` (PRIVATE-TOKEN = the service token),
// and a JWKS at `/oauth/discovery/keys`. It counts calls per endpoint and can be made slow or
// failing per endpoint while a test runs.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JSONWebKeySet } from 'jose'

export type Endpoint = 'job' | 'project' | 'group' | 'jwks'

export interface FakeJob {
  readonly id: number
  /** GitLab job status: 'running', 'success', 'failed', 'canceled', ... */
  status: string
  readonly projectId: number
  readonly userId: number
}

export interface FakeProject {
  readonly id: number
  readonly pathWithNamespace: string
  readonly namespace: { readonly id: number, readonly kind: 'group' | 'user', readonly fullPath: string, readonly parentId: number | null }
}

export interface FakeGroup {
  readonly id: number
  readonly fullPath: string
  readonly parentId: number | null
}

export interface FakeUser {
  readonly id: number
  readonly username: string
  readonly access?: Readonly<Record<number, number>>
  readonly groupAccess?: Readonly<Record<number, number>>
}

export interface FakeGitlabOptions {
  readonly serviceToken?: string
  readonly jobs?: Record<string, FakeJob>
  readonly projects?: readonly FakeProject[]
  readonly groups?: readonly FakeGroup[]
  readonly jwks?: JSONWebKeySet
  /**
   * User tokens (PRIVATE-TOKEN or Authorization: Bearer): `GET /api/v4/user` and `GET /api/v4/projects/:id`
   * (id or URL-encoded path) answer as that user, with `permissions` from `access` (project id →
   * project_access level) and `groupAccess` (project id → group_access level).
   */
  readonly users?: Record<string, FakeUser>
  /** Answers every other request (the gate's forwarded traffic); 404 when absent. The body is left unread for it. */
  readonly fallback?: (req: IncomingMessage, res: ServerResponse) => void
}

export interface FakeGitlab {
  readonly url: string
  readonly serviceToken: string
  /** Job tokens (the exact string a job sends) to their jobs. */
  readonly jobs: Map<string, FakeJob>
  readonly projects: Map<number, FakeProject>
  readonly groups: Map<number, FakeGroup>
  readonly calls: Record<Endpoint, number>
  /** Request targets seen, to check that no token ever travels in a URL. */
  readonly targets: string[]
  jwks: JSONWebKeySet
  /** Wait this long before answering any request. */
  delayMs: number
  /** Answer this status instead, per endpoint. */
  readonly failWith: Partial<Record<Endpoint, number>>
  resetCalls (): void
  close (): Promise<void>
}

/** Nested groups, outermost first: `groupChain([1, 'acme'], [2, 'platform'])`. */
export function groupChain (...levels: Array<[number, string]>): FakeGroup[] {
  const groups: FakeGroup[] = []
  let parent: FakeGroup | null = null
  for (const [id, path] of levels) {
    const g: FakeGroup = { id, fullPath: parent === null ? path : `${parent.fullPath}/${path}`, parentId: parent?.id ?? null }
    groups.push(g)
    parent = g
  }
  return groups
}

export async function startFakeGitlab (options: FakeGitlabOptions = {}): Promise<FakeGitlab> {
  const fake: Omit<FakeGitlab, 'url' | 'close'> = {
    serviceToken: options.serviceToken ?? 'glpat-service-token',
    jobs: new Map(Object.entries(options.jobs ?? {})),
    projects: new Map((options.projects ?? []).map(p => [p.id, p])),
    groups: new Map((options.groups ?? []).map(g => [g.id, g])),
    calls: { job: 0, project: 0, group: 0, jwks: 0 },
    targets: [],
    jwks: options.jwks ?? { keys: [] },
    delayMs: 0,
    failWith: {},
    resetCalls () {
      for (const k of Object.keys(this.calls) as Endpoint[]) this.calls[k] = 0
      this.targets.length = 0
    }
  }

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    if (res.destroyed) return // closed while a delayed answer waited
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  const unauthorized = { message: '401 Unauthorized' }
  const userOf = (req: IncomingMessage): FakeUser | undefined => {
    const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
    const token = req.headers['private-token'] ?? bearer
    return typeof token === 'string' ? options.users?.[token] : undefined
  }

  /** The endpoint a request is for, and the id in its path. */
  const classify = (req: IncomingMessage): { endpoint: Endpoint | null, id: number } => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname
    let m: RegExpExecArray | null
    if (req.method !== 'GET') return { endpoint: null, id: 0 }
    if (path === '/api/v4/job') return { endpoint: 'job', id: 0 }
    if (userOf(req) !== undefined || req.headers['private-token'] === fake.serviceToken) {
      if (path === '/api/v4/user' && userOf(req) !== undefined) return { endpoint: 'project', id: -2 }
      if ((m = /^\/api\/v4\/projects\/([^/]+)$/.exec(path)) !== null) {
        const key = decodeURIComponent(m[1]!)
        const byPath = [...fake.projects.values()].find(p => p.pathWithNamespace.toLowerCase() === key.toLowerCase())
        return { endpoint: 'project', id: /^\d+$/.test(key) ? Number(key) : byPath?.id ?? -1 }
      }
    }
    if ((m = /^\/api\/v4\/projects\/(\d+)$/.exec(path)) !== null) return { endpoint: 'project', id: Number(m[1]) }
    if ((m = /^\/api\/v4\/groups\/(\d+)$/.exec(path)) !== null) return { endpoint: 'group', id: Number(m[1]) }
    if (path === '/oauth/discovery/keys') return { endpoint: 'jwks', id: 0 }
    return { endpoint: null, id: 0 }
  }

  const answer = (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint | null, id: number): void => {
    if (endpoint === null) {
      if (options.fallback !== undefined) options.fallback(req, res)
      else send(res, 404, { message: '404 Not Found' })
      return
    }
    const failure = fake.failWith[endpoint]
    if (failure !== undefined) { send(res, failure, { message: `${failure}` }); return }

    switch (endpoint) {
      case 'job': {
        const token = req.headers['job-token']
        const job = typeof token === 'string' ? fake.jobs.get(token) : undefined
        if (job === undefined) { send(res, 401, unauthorized); return }
        send(res, 200, {
          id: job.id,
          status: job.status,
          name: 'build',
          stage: 'test',
          web_url: `http://fake/jobs/${job.id}`,
          pipeline: { id: 1000 + job.id, project_id: job.projectId, status: job.status },
          user: { id: job.userId, username: `user${job.userId}` }
        })
        return
      }
      case 'project':
      case 'group': {
        const user = userOf(req)
        if (endpoint === 'project' && user !== undefined) {
          if (id === -2) { send(res, 200, { id: user.id, username: user.username }); return }
          const p = fake.projects.get(id)
          const level = user.access?.[id]
          const groupLevel = user.groupAccess?.[id]
          if (p === undefined || (level === undefined && groupLevel === undefined)) { send(res, 404, { message: '404 Project Not Found' }); return }
          send(res, 200, {
            id: p.id,
            path_with_namespace: p.pathWithNamespace,
            permissions: { project_access: level === undefined ? null : { access_level: level }, group_access: groupLevel === undefined ? null : { access_level: groupLevel } }
          })
          return
        }
        if (req.headers['private-token'] !== fake.serviceToken) { send(res, 401, unauthorized); return }
        if (endpoint === 'project') {
          const p = fake.projects.get(id)
          if (p === undefined) { send(res, 404, { message: '404 Project Not Found' }); return }
          send(res, 200, {
            id: p.id,
            path_with_namespace: p.pathWithNamespace,
            namespace: { id: p.namespace.id, kind: p.namespace.kind, full_path: p.namespace.fullPath, parent_id: p.namespace.parentId }
          })
        } else {
          const g = fake.groups.get(id)
          if (g === undefined) { send(res, 404, { message: '404 Group Not Found' }); return }
          send(res, 200, { id: g.id, full_path: g.fullPath, parent_id: g.parentId })
        }
        return
      }
      case 'jwks':
        send(res, 200, fake.jwks)
    }
  }

  const server = createServer((req, res) => {
    fake.targets.push(req.url ?? '')
    // Counted on arrival, so a call the client gave up on still counts.
    const { endpoint, id } = classify(req)
    if (endpoint !== null) fake.calls[endpoint]++
    if (endpoint !== null || options.fallback === undefined) req.resume()
    if (fake.delayMs > 0) setTimeout(() => { answer(req, res, endpoint, id) }, fake.delayMs)
    else answer(req, res, endpoint, id)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  })
}
