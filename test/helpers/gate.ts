// A gate on port 0 in front of a fake GitLab (test/helpers/fake-gitlab.ts) that answers the
// identity calls and records every forwarded request, with a memory store seeded from a small
// world: groups acme (10) > acme/platform (11), other (20); projects acme/platform/app (100, a job
// project), acme/platform/web (600, a job project), acme/lib (200), other/tools (300),
// acme/open (500, inbound scope off), acme/registry (700).

import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TestContext } from 'node:test'
import { pino } from 'pino'
import { loadCatalog } from '../../src/catalog/load.ts'
import { loadConfig, type Config } from '../../src/config.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants, type AllowlistEntry } from '../../src/grants/model.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { createGate, type Gate } from '../../src/gate/server.ts'
import { createGitlabClientFromConfig, createResolverFromConfig, createStoreFromConfig } from '../../src/gate/deps.ts'
import { groupChain, startFakeGitlab, type FakeGitlab, type FakeGitlabOptions } from './fake-gitlab.ts'

/** The form of a request id the gate makes (src/gate/request.ts): the process's random prefix, a count. */
export const GATE_REQUEST_ID = /^[0-9a-f]{16}-[0-9a-z]+$/

export const TOKENS = {
  app: 'glcbt-64_appjobrunning0000000000',
  appFinished: 'glcbt-64_appjobfinished000000000',
  tools: 'glcbt-64_toolsjobrunning00000000',
  lib: 'glcbt-64_libjobrunning0000000000',
  web: 'glcbt-64_webjobrunning0000000000'
} as const

export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly bytes: number
  readonly sha256: string
}

export interface TestGate {
  readonly url: string
  readonly healthUrl: string
  readonly gate: Gate
  readonly gitlab: FakeGitlab
  readonly store: GrantStore
  /** Forwarded requests the upstream received (identity calls excluded). */
  readonly seen: SeenRequest[]
  readonly logs: Array<Record<string, unknown>>
  /** Replaces the upstream's answer to forwarded requests. */
  respond: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void
}

const entry = (targetType: 'project' | 'group', targetId: number, policies: string[] | null): AllowlistEntry => ({
  targetType, targetId, defaultPermissions: policies === null, jobTokenPolicies: policies ?? [], addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z'
})

export const WORLD_GRANTS = [
  // acme/lib lets acme/platform/app read packages only, and every acme job use default permissions.
  { projectId: 200, projectPath: 'acme/lib', inboundEnabled: true, entries: [entry('project', 100, ['read_packages']), entry('group', 10, null)] },
  // other/tools lists nobody.
  { projectId: 300, projectPath: 'other/tools', inboundEnabled: true, entries: [] },
  // acme/open turned its inbound scope off (still enforced while the instance enforces it).
  { projectId: 500, projectPath: 'acme/open', inboundEnabled: false, entries: [] },
  // acme/registry lets every job of the other group publish packages (admin_packages, which implies read).
  { projectId: 700, projectPath: 'acme/registry', inboundEnabled: true, entries: [entry('group', 20, ['admin_packages'])] }
]

function defaultRespond (req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const text = JSON.stringify({ upstream: true, method: req.method, url: req.url, bytes: body.length })
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'fake' })
  res.end(text)
}

export interface TestGateOptions {
  readonly seed?: boolean
  /** User tokens the fake GitLab knows (configuration API tests). */
  readonly users?: FakeGitlabOptions['users']
  /** `GET /personal_access_tokens/self` records by token (fake-gitlab.ts accessTokens). */
  readonly accessTokens?: FakeGitlabOptions['accessTokens']
  /** OAuth tokens of `users` and their scopes (fake-gitlab.ts oauthTokens). */
  readonly oauthTokens?: FakeGitlabOptions['oauthTokens']
  /** Tokens GitLab's API signs no one in with: 401 to `GET /projects/:id` and `/user` (fake-gitlab.ts deployTokens). */
  readonly deployTokens?: FakeGitlabOptions['deployTokens']
  /** The GitLab client and the resolver as serve builds them (always so with GATE_JWT_KEY). */
  readonly asServe?: boolean
  /**
   * Longer waits on the store for a test reading thousands of keys at once on a loaded machine:
   * Redis's command timeout (with GATE_REDIS_URL; createStoreFromConfig) and the grant cache's
   * (GateDeps.grantLoadTimeoutMs). Hang detectors.
   */
  readonly storeTimeoutMs?: number
  /** The logger's level (default debug); `trace` writes everything the gate can write. */
  readonly logLevel?: string
}

export async function startTestGate (t: TestContext, env: Record<string, string> = {}, options: TestGateOptions = {}): Promise<TestGate> {
  const seen: SeenRequest[] = []
  const holder: { respond: TestGate['respond'] } = { respond: defaultRespond }
  const gitlab = await startFakeGitlab({
    jobs: {
      [TOKENS.app]: { id: 1, status: 'running', projectId: 100, userId: 7 },
      [TOKENS.appFinished]: { id: 2, status: 'success', projectId: 100, userId: 7 },
      [TOKENS.tools]: { id: 3, status: 'running', projectId: 300, userId: 8 },
      [TOKENS.lib]: { id: 4, status: 'running', projectId: 200, userId: 9 },
      [TOKENS.web]: { id: 5, status: 'running', projectId: 600, userId: 7 }
    },
    groups: [...groupChain([10, 'acme'], [11, 'platform']), { id: 20, fullPath: 'other', parentId: null }],
    projects: [
      { id: 100, pathWithNamespace: 'acme/platform/app', namespace: { id: 11, kind: 'group', fullPath: 'acme/platform', parentId: 10 } },
      { id: 200, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } },
      { id: 300, pathWithNamespace: 'other/tools', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } },
      { id: 600, pathWithNamespace: 'acme/platform/web', namespace: { id: 11, kind: 'group', fullPath: 'acme/platform', parentId: 10 } },
      { id: 700, pathWithNamespace: 'acme/registry', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }
    ],
    ...(options.users === undefined ? {} : { users: options.users }),
    ...(options.accessTokens === undefined ? {} : { accessTokens: options.accessTokens }),
    ...(options.oauthTokens === undefined ? {} : { oauthTokens: options.oauthTokens }),
    ...(options.deployTokens === undefined ? {} : { deployTokens: options.deployTokens }),
    ...(env.GATE_RELATIVE_URL_ROOT === undefined ? {} : { relativeUrlRoot: env.GATE_RELATIVE_URL_ROOT }),
    packageQueries: true,
    fallback: (req, res) => {
      // Streams the body through a hash, so a 1 GiB upload is never held in the test either.
      const hash = createHash('sha256')
      let bytes = 0
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk)
        bytes += chunk.length
        if (bytes <= 1 << 20) chunks.push(chunk)
      })
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes, sha256: hash.digest('hex') })
        holder.respond(req, res, Buffer.concat(chunks))
      })
      req.on('error', () => { /* the gate aborted the upload */ })
    }
  })
  t.after(() => gitlab.close())

  const config: Config = loadConfig({
    GATE_UPSTREAM_URL: gitlab.url,
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: gitlab.serviceToken,
    GATE_DRAIN_TIMEOUT_MS: '2000',
    // Tests read the line of every request they send; the repeat window has its own tests
    // (test/observability/decision-log-repeats.test.ts).
    GATE_DECISION_LOG_REPEAT_WINDOW_MS: '0',
    ...env,
    // `{gitlab}` in GATE_JWT_KEY: the fake GitLab's URL (its JWKS is `{gitlab}/oauth/discovery/keys`).
    ...(env.GATE_JWT_KEY === undefined ? {} : { GATE_JWT_KEY: env.GATE_JWT_KEY.replace('{gitlab}', gitlab.url) })
  })
  // GATE_REDIS_URL in env: the Redis store, as serve builds it; else the memory store.
  const store = config.redisUrl !== undefined ? await createStoreFromConfig(config, options.storeTimeoutMs === undefined ? {} : { commandTimeoutMs: options.storeTimeoutMs }) : await createMemoryStore()
  if (options.seed !== false) {
    const settings = createInstanceSettings()
    const policies = createPolicyIndex(loadCatalog().policies)
    for (const doc of WORLD_GRANTS) await store.put(validateProjectGrants(doc, { settings, policies }))
  }
  const logs: Array<Record<string, unknown>> = []
  const logger = pino({ level: options.logLevel ?? 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  // The cache settings as serve passes them (GATE_IDENTITY_CACHE_*, GATE_NAMESPACE_CACHE_TTL_MS).
  // With GATE_JWT_KEY (a JWKS URL such as the fake's /oauth/discovery/keys) or asServe: the
  // client and the resolver as serve builds them (JWT checks, GATE_IDENTITY_TIMEOUT_MS).
  const client = config.jwtKey === undefined && options.asServe !== true ? undefined : createGitlabClientFromConfig(config)
  const resolver = client !== undefined
    ? createResolverFromConfig(config, client)
    : createJobResolver({ upstream: gitlab.url, serviceToken: gitlab.serviceToken, cache: { tokenTtlMs: config.identityCacheTtlMs, maxTokens: config.identityCacheMaxTokens, namespaceTtlMs: config.namespaceCacheTtlMs } })
  const gate = createGate(config, { store, resolver, logger, ...(client === undefined ? {} : { gitlab: client }), ...(options.storeTimeoutMs === undefined ? {} : { grantLoadTimeoutMs: options.storeTimeoutMs }) })
  await gate.listen()
  t.after(() => gate.close(0))
  const api = gate.address()
  const health = gate.healthAddress()
  return {
    url: `http://127.0.0.1:${api.port}`,
    healthUrl: `http://127.0.0.1:${health.port}`,
    gate,
    gitlab,
    store,
    seen,
    logs,
    set respond (fn: TestGate['respond']) { holder.respond = fn },
    get respond () { return holder.respond }
  }
}
