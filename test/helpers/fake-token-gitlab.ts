// A small fake GitLab for the GraphQL token tests, on port 0: a token's own record
// (`GET /api/v4/personal_access_tokens/self` and `/personal_access_tokens/:id`, PRIVATE-TOKEN =
// the token; `GET /oauth/token/info`, Authorization: Bearer = an OAuth token) and project, group and namespace lookups by id or URL-encoded path (PRIVATE-TOKEN =
// the service token). Counts calls per endpoint; each endpoint can be made to answer a status, a
// body that is not JSON, or to cut the connection. Like GitLab's Grape, it answers a path that
// ends in `.txt` as text/plain, not JSON (grapeFormat).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { asRubyText, grapeFormat } from './fake-gitlab.ts'

export type TokenEndpoint = 'self' | 'by_id' | 'token_info' | 'project' | 'group' | 'namespace'

export interface FakeToken {
  /** What `self` answers: a record (200) or a status. */
  readonly self: Readonly<Record<string, unknown>> | number
  /** What `/personal_access_tokens/:id` answers for the token's own id; default 404. */
  readonly byId?: Readonly<Record<string, unknown>> | number
  /** What `/oauth/token/info` answers to the token as Bearer; default 401, as Doorkeeper answers a token it does not know. */
  readonly tokenInfo?: Readonly<Record<string, unknown>> | number
}

export interface FakeTokenProject {
  readonly id: number
  readonly path: string
  readonly namespace: { readonly id: number, readonly kind: 'group' | 'user', readonly fullPath: string }
  /** The owner of a user namespace. */
  readonly ownerId?: number
}

export interface FakeTokenGroup { readonly id: number, readonly fullPath: string, readonly parentId: number | null }

export type Failure = { readonly status: number } | 'not_json' | 'cut'

export interface FakeTokenGitlab {
  readonly url: string
  readonly calls: Record<TokenEndpoint, number>
  /** Make an endpoint fail until set back to undefined. */
  readonly fail: Partial<Record<TokenEndpoint, Failure>>
  readonly tokens: Map<string, FakeToken>
  close (): Promise<void>
}

export const SERVICE_TOKEN = 'glpat-service-token-0000'

/** A token record as GitLab's entity writes it. */
export function tokenRecord (id: number, userId: number, granularScopes?: ReadonlyArray<Readonly<Record<string, unknown>>>): Record<string, unknown> {
  return {
    id,
    name: `token ${id}`,
    revoked: false,
    created_at: '2026-11-01T00:00:00.000Z',
    scopes: granularScopes === undefined ? ['api'] : ['granular'],
    user_id: userId,
    active: true,
    granular: granularScopes !== undefined,
    expires_at: '2027-11-01',
    ...(granularScopes === undefined ? {} : { granular_scopes: granularScopes })
  }
}

export async function startFakeTokenGitlab (options: { tokens?: Record<string, FakeToken>, projects?: readonly FakeTokenProject[], groups?: readonly FakeTokenGroup[], userNamespaces?: ReadonlyArray<{ id: number, path: string, ownerId: number }> } = {}): Promise<FakeTokenGitlab> {
  const tokens = new Map(Object.entries(options.tokens ?? {}))
  const projects = options.projects ?? []
  const groups = options.groups ?? []
  const userNamespaces = options.userNamespaces ?? []
  const calls: Record<TokenEndpoint, number> = { self: 0, by_id: 0, token_info: 0, project: 0, group: 0, namespace: 0 }
  const fail: Partial<Record<TokenEndpoint, Failure>> = {}

  /** Answers to requests whose path asks Grape for text. */
  const textAnswers = new WeakSet<ServerResponse>()
  const send = (res: ServerResponse, status: number, body?: unknown): void => {
    const json = body === undefined ? JSON.stringify({ message: `${status}` }) : JSON.stringify(body)
    const asText = textAnswers.has(res)
    res.writeHead(status, { 'content-type': asText ? 'text/plain' : 'application/json' })
    res.end(asText ? asRubyText(json) : json)
  }
  const find = <T extends { id: number }>(list: readonly T[], segment: string, pathOf: (item: T) => string): T | undefined => {
    const key = decodeURIComponent(segment).toLowerCase()
    // Digits are an id, which ActiveRecord casts: `021` is 21.
    const id = /^\d+$/.test(key) ? key.replace(/^0+(?=\d)/, '') : null
    return list.find(item => String(item.id) === id || pathOf(item).toLowerCase() === key)
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://gitlab')
    const path = url.pathname
    if (grapeFormat(req.url ?? '/') === 'txt') textAnswers.add(res)
    const credential = req.headers['private-token']
    let endpoint: TokenEndpoint | null = null
    let segment = ''
    let m: RegExpExecArray | null
    if (path === '/api/v4/personal_access_tokens/self') endpoint = 'self'
    else if ((m = /^\/api\/v4\/personal_access_tokens\/(\d+)$/.exec(path)) !== null) [endpoint, segment] = ['by_id', m[1]!]
    else if (path === '/oauth/token/info') endpoint = 'token_info'
    else if ((m = /^\/api\/v4\/projects\/([^/]+)$/.exec(path)) !== null) [endpoint, segment] = ['project', m[1]!]
    else if ((m = /^\/api\/v4\/groups\/([^/]+)$/.exec(path)) !== null) [endpoint, segment] = ['group', m[1]!]
    else if ((m = /^\/api\/v4\/namespaces\/([^/]+)$/.exec(path)) !== null) [endpoint, segment] = ['namespace', m[1]!]
    if (endpoint === null) return send(res, 404)
    calls[endpoint]++
    const failure = fail[endpoint]
    if (failure === 'cut') {
      req.socket.destroy()
      return
    }
    if (failure === 'not_json') {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<html>sign in</html>')
      return
    }
    if (failure !== undefined) return send(res, failure.status)
    if (endpoint === 'token_info') {
      const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
      const answer = (bearer === undefined ? undefined : tokens.get(bearer)?.tokenInfo) ?? 401
      return typeof answer === 'number' ? send(res, answer) : send(res, 200, answer)
    }
    if (endpoint === 'self' || endpoint === 'by_id') {
      const token = typeof credential === 'string' ? tokens.get(credential) : undefined
      if (token === undefined) return send(res, 401)
      if (endpoint === 'self') return typeof token.self === 'number' ? send(res, token.self) : send(res, 200, token.self)
      const own = typeof token.self === 'number' ? undefined : token.self.id
      const answer = String(own) === segment ? token.byId ?? 404 : 404
      return typeof answer === 'number' ? send(res, answer) : send(res, 200, answer)
    }
    if (credential !== SERVICE_TOKEN) return send(res, 401)
    if (endpoint === 'project') {
      const p = find(projects, segment, p => p.path)
      if (p === undefined) return send(res, 404, { message: '404 Project Not Found' })
      return send(res, 200, {
        id: p.id,
        path_with_namespace: p.path,
        namespace: { id: p.namespace.id, kind: p.namespace.kind, full_path: p.namespace.fullPath },
        ...(p.ownerId === undefined ? {} : { owner: { id: p.ownerId } })
      })
    }
    if (endpoint === 'group') {
      const g = find(groups, segment, g => g.fullPath)
      if (g === undefined) return send(res, 404, { message: '404 Group Not Found' })
      return send(res, 200, { id: g.id, full_path: g.fullPath, parent_id: g.parentId })
    }
    const g = find(groups, segment, g => g.fullPath)
    if (g !== undefined) return send(res, 200, { id: g.id, kind: 'group', full_path: g.fullPath, parent_id: g.parentId })
    const u = find(userNamespaces, segment, u => u.path)
    if (u !== undefined) return send(res, 200, { id: u.id, kind: 'user', full_path: u.path, parent_id: null, owner_id: u.ownerId })
    return send(res, 404, { message: '404 Namespace Not Found' })
  }

  const server = createServer(handle)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    fail,
    tokens,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}
