// A gate on port 0 in front of a fake GitLab that knows personal access tokens, for the
// enforcement of fine-grained tokens at /api/graphql: `GET /api/v4/personal_access_tokens/self`
// answers each token's record (fine-grained: `granular: true` and `granular_scopes`), projects
// and groups are looked up as in test/helpers/fake-gitlab.ts (groups by path too), and every
// other request is GitLab's GraphQL: recorded byte for byte and answered `{"data": {...}}`.
//
// The world: groups acme (10) > acme/platform (11), other (20); projects acme/platform/app
// (100), acme/lib (200), other/tools (300).

import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { TestContext } from 'node:test'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { createGate, type Gate } from '../../src/gate/server.ts'
import { groupChain, startFakeGitlab, type FakeGitlab, type FakeGitlabOptions } from './fake-gitlab.ts'

export interface FakeScope {
  readonly access: 'personal_projects' | 'all_memberships' | 'selected_memberships' | 'user' | 'instance'
  readonly permissions: readonly string[]
  readonly project_id?: number
  readonly group_id?: number
}

/** A token GitLab knows: fine-grained with scopes, or legacy (no scopes). */
export interface FakeToken {
  readonly userId: number
  readonly scopes?: readonly FakeScope[]
}

export interface UpstreamCall {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  readonly sha256: string
  readonly bytes: number
}

export interface GraphqlGate {
  readonly url: string
  readonly healthUrl: string
  readonly gate: Gate
  readonly gitlab: FakeGitlab
  /** Requests GitLab's GraphQL received (lookups excluded). */
  readonly upstream: UpstreamCall[]
  readonly logs: Array<Record<string, unknown>>
  /** `GET /personal_access_tokens/self` calls. */
  readonly tokenCalls: () => number
  /** Answer token lookups with this status (503: GitLab down), or undefined. */
  tokenLookupFails: number | undefined
}

/** A REST answer of the gate: its status and its JSON body (undefined when empty). */
export interface ApiAnswer { status: number, body: any }

/** `method` `/api/v4<path>` with `token` as PRIVATE-TOKEN, a JSON body where given. */
export async function apiCall (g: Pick<GraphqlGate, 'url'>, method: string, path: string, token: string, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(`${g.url}/api/v4${path}`, {
    method,
    headers: { 'private-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

export const WORLD = {
  groups: [...groupChain([10, 'acme'], [11, 'platform']), { id: 20, fullPath: 'other', parentId: null }],
  projects: [
    { id: 100, pathWithNamespace: 'acme/platform/app', namespace: { id: 11, kind: 'group' as const, fullPath: 'acme/platform', parentId: 10 } },
    { id: 200, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group' as const, fullPath: 'acme', parentId: null } },
    { id: 300, pathWithNamespace: 'other/tools', namespace: { id: 20, kind: 'group' as const, fullPath: 'other', parentId: null } }
  ]
}

export const SCHEMA_FIXTURE = new URL('../fixtures/graphql/gitlab-subset.graphql', import.meta.url)

export interface GraphqlGateOptions {
  readonly tokens: Readonly<Record<string, FakeToken>>
  readonly env?: Readonly<Record<string, string>>
  /** Use the fixture schema (test/fixtures/graphql/gitlab-subset.graphql). */
  readonly schema?: boolean
  /** User tokens for the configuration API's Maintainer checks (fake-gitlab.ts users). */
  readonly users?: FakeGitlabOptions['users']
}

function readAll (req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export async function startGraphqlGate (t: TestContext, options: GraphqlGateOptions): Promise<GraphqlGate> {
  const upstream: UpstreamCall[] = []
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  const gitlab = await startFakeGitlab({
    groups: WORLD.groups,
    projects: WORLD.projects,
    ...(options.users === undefined ? {} : { users: options.users }),
    accessTokens: Object.fromEntries(Object.entries(options.tokens).map(([token, known]) => [token, {
      id: 1000 + known.userId,
      name: 'token',
      user_id: known.userId,
      active: true,
      revoked: false,
      ...(known.scopes === undefined ? { scopes: ['api'] } : { scopes: ['granular'], granular: true, granular_scopes: known.scopes })
    }])),
    fallback: (req, res) => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname
      const group = /^\/api\/v4\/groups\/([^/]+)$/.exec(path)
      if (group !== null && req.method === 'GET') {
        req.resume()
        const key = decodeURIComponent(group[1]!).toLowerCase()
        const g = WORLD.groups.find(x => x.fullPath.toLowerCase() === key)
        if (g === undefined || req.headers['private-token'] !== gitlab.serviceToken) { json(res, 404, { message: '404 Group Not Found' }); return }
        json(res, 200, { id: g.id, full_path: g.fullPath, parent_id: g.parentId })
        return
      }
      void readAll(req).then(body => {
        upstream.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') })
        json(res, 200, { data: { upstream: true } })
      }, () => { /* the gate cut the upload */ })
    }
  })
  t.after(() => gitlab.close())
  const config = loadConfig({
    GATE_UPSTREAM_URL: gitlab.url,
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: gitlab.serviceToken,
    GATE_DRAIN_TIMEOUT_MS: '2000',
    ...(options.schema === true ? { GATE_GRAPHQL_SCHEMA: fileURLToPath(SCHEMA_FIXTURE) } : {}),
    ...options.env
  })
  const logs: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  const gate = createGate(config, {
    store: await createMemoryStore(),
    resolver: createJobResolver({ upstream: gitlab.url, serviceToken: gitlab.serviceToken }),
    logger,
  })
  await gate.listen()
  t.after(() => gate.close(0))
  return {
    url: `http://127.0.0.1:${gate.address().port}`,
    healthUrl: `http://127.0.0.1:${gate.healthAddress().port}`,
    gate,
    gitlab,
    upstream,
    logs,
    tokenCalls: () => gitlab.tokenSelfCalls,
    get tokenLookupFails () { return gitlab.tokenSelfFailWith },
    set tokenLookupFails (v) { gitlab.tokenSelfFailWith = v }
  }
}

/** POSTs a JSON body (or the given bytes) to /api/graphql; the answer's status and parsed body. */
export async function postGraphql (url: string, body: unknown, headers: Record<string, string> = {}, path = '/api/graphql'): Promise<{ status: number, body: any, text: string }> {
  const raw = typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body)
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw })
  const text = await res.text()
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch { parsed = undefined }
  return { status: res.status, body: parsed, text }
}
