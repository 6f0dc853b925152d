// One GitLab client per gate, built as `serve` builds it: identity's introspection and the
// configuration API's lookups go through it to `<GATE_UPSTREAM_URL><GATE_RELATIVE_URL_ROOT>/api/v4`
// (where the proxy forwards API traffic too), their calls reach /metrics as one counter family,
// and the gate closes it once.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, request, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { loadConfig } from '../../src/config.ts'
import { createGitlabClientFromConfig, createResolverFromConfig } from '../../src/gate/deps.ts'
import { createGate } from '../../src/gate/server.ts'
import { GitlabUnavailable, type GitlabClient } from '../../src/gitlab/client.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createInstanceSettings, validateProjectGrants } from '../../src/grants/model.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { send } from '../helpers/http.ts'
import { has, scrape, total } from '../helpers/metrics.ts'

const JOB_TOKEN = 'glcbt-64_appjobrunning0000000000'
const MAINTAINER = 'glpat-maintainer-0000000000'
const MOUNT = '/base/gitlab'

/**
 * A fake GitLab reachable only under MOUNT, as behind a reverse proxy at `/base` with GitLab's
 * relative URL root `/gitlab`: anything else is 404 and remembered as misrouted.
 */
async function startMountedGitlab (t: TestContext) {
  const forwarded: string[] = []
  const fake = await startFakeGitlab({
    jobs: { [JOB_TOKEN]: { id: 1, status: 'running', projectId: 100, userId: 7 } },
    groups: [{ id: 10, fullPath: 'acme', parentId: null }],
    projects: [
      { id: 100, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } },
      { id: 200, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }
    ],
    users: { [MAINTAINER]: { id: 41, username: 'mia', access: { 200: 40 } } },
    fallback: (req, res) => {
      forwarded.push(req.url ?? '')
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"upstream":true}')
    }
  })
  t.after(() => fake.close())
  const misrouted: string[] = []
  const mount = createServer((req: IncomingMessage, res) => {
    const url = req.url ?? ''
    if (!url.startsWith(MOUNT + '/')) {
      misrouted.push(url)
      req.resume()
      res.writeHead(404).end()
      return
    }
    const upstream = request(fake.url + url.slice(MOUNT.length), { method: req.method, headers: req.headers }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => mount.listen(0, '127.0.0.1', resolve))
  t.after(async () => { mount.closeAllConnections(); await new Promise(resolve => mount.close(resolve)) })
  return { fake, forwarded, misrouted, url: `http://127.0.0.1:${(mount.address() as AddressInfo).port}` }
}

test('identity and the configuration API call GitLab through one client at <upstream><relative root>/api/v4, counted in /metrics', async (t) => {
  const gitlab = await startMountedGitlab(t)
  const config = loadConfig({
    GATE_UPSTREAM_URL: gitlab.url + '/base',
    GATE_RELATIVE_URL_ROOT: '/gitlab',
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: gitlab.fake.serviceToken,
    GATE_DRAIN_TIMEOUT_MS: '2000'
  })
  // As serve builds it (src/main.ts), the client wrapped to count close().
  const client = createGitlabClientFromConfig(config)
  let closes = 0
  const shared: GitlabClient = { ...client, close: async () => { closes++; await client.close() } }
  const resolver = createResolverFromConfig(config, shared)
  assert.equal(resolver.gitlab, shared, 'the resolver calls GitLab through the shared client')
  const store = await createMemoryStore()
  const policies = createPolicyIndex(loadCatalog().policies)
  await store.put(validateProjectGrants({
    projectId: 200,
    projectPath: 'acme/lib',
    inboundEnabled: true,
    entries: [{ targetType: 'project', targetId: 100, defaultPermissions: false, jobTokenPolicies: ['read_packages'], addedBy: null, createdAt: '2026-01-01T00:00:00Z' }]
  }, { settings: createInstanceSettings(), policies }))
  const gate = createGate(config, { store, resolver, gitlab: shared, logger: pino({ level: 'silent' }) })
  await gate.listen()
  let closed = false
  t.after(async () => { if (!closed) await gate.close(0) })
  assert.equal(gate.gitlab, shared)
  const api = `http://127.0.0.1:${gate.address().port}`

  // Identity: the job behind the token, its project and group.
  const allowed = await send(api, 'GET', '/gitlab/api/v4/projects/200/packages', { 'job-token': JOB_TOKEN })
  assert.equal(allowed.status, 200, allowed.text)
  assert.deepEqual(allowed.json(), { upstream: true })
  const denied = await send(api, 'DELETE', '/gitlab/api/v4/projects/200/packages/5', { 'job-token': JOB_TOKEN })
  assert.equal(denied.json().code, 'MISSING_POLICIES', 'decided with the resolved job')

  // The configuration API: the caller's role on the project, and who the caller is.
  const scope = await send(api, 'GET', '/gitlab/api/v4/projects/200/job_token_scope', { 'private-token': MAINTAINER })
  assert.equal(scope.status, 200, scope.text)
  assert.deepEqual(scope.json(), { inbound_enabled: true, outbound_enabled: false })
  const refused = await send(api, 'GET', '/gitlab/api/v4/projects/200/job_token_scope', { 'private-token': 'glpat-nobody-000000' })
  assert.deepEqual([refused.status, refused.json().code], [401, 'ADMIN_UNAUTHENTICATED'])

  assert.deepEqual(gitlab.misrouted, [], 'every call went under the upstream URL\'s path and the relative URL root')
  assert.equal(gitlab.fake.calls.job, 1)
  assert.ok(gitlab.fake.calls.project >= 2, 'the job\'s project (service token) and the caller\'s access (own token)')
  assert.deepEqual(gitlab.forwarded, ['/api/v4/projects/200/packages'], 'the proxy forwards under the same mount')

  const { samples } = await scrape(`http://127.0.0.1:${gate.healthAddress().port}`)
  const calls = (endpoint: string, outcome: string): number => total(samples, 'job_token_gate_gitlab_requests_total', { endpoint, outcome })
  assert.equal(calls('job', 'ok'), 1)
  assert.equal(calls('project', 'ok'), 1)
  assert.equal(calls('project_access', 'ok'), 1)
  assert.equal(calls('project_access', 'rejected'), 1)
  assert.equal(calls('user', 'ok'), 1)
  assert.deepEqual(Object.entries(client.stats()).reduce((sum, [, n]) => sum + n, 0), total(samples, 'job_token_gate_gitlab_requests_total'), 'one family, every call of the client')
  assert.ok(!has(samples, 'job_token_gate_introspection_calls_total'), 'no second family for the same calls')

  await gate.close(0)
  closed = true
  assert.equal(closes, 1, 'the gate closes the shared client once; the resolver leaves it')
  await assert.rejects(client.get('/api/v4/user', { endpoint: 'user', as: 'service' }), GitlabUnavailable)
})

test('a resolver with a client of its own: its calls still reach the one family, once', async (t) => {
  const gitlab = await startMountedGitlab(t)
  const config = loadConfig({
    GATE_UPSTREAM_URL: gitlab.url + '/base',
    GATE_RELATIVE_URL_ROOT: '/gitlab',
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: gitlab.fake.serviceToken
  })
  const own = createGitlabClientFromConfig(config)
  t.after(() => own.close())
  const resolver = createResolverFromConfig(config, own)
  // No client given: the gate makes one from the configuration for the configuration API.
  const gate = createGate(config, { store: await createMemoryStore(), resolver, logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  assert.notEqual(gate.gitlab, own)
  const api = `http://127.0.0.1:${gate.address().port}`
  await send(api, 'GET', '/gitlab/api/v4/projects/200/packages', { 'job-token': JOB_TOKEN })
  await send(api, 'GET', '/gitlab/api/v4/projects/200/job_token_scope', { 'private-token': MAINTAINER })
  assert.deepEqual(gitlab.misrouted, [])
  const { samples } = await scrape(`http://127.0.0.1:${gate.healthAddress().port}`)
  assert.equal(total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'job', outcome: 'ok' }), 1)
  assert.equal(total(samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'project_access', outcome: 'ok' }), 1)
})

test('GATE_IDENTITY_CACHE_MAX_TOKENS bounds the resolved tokens kept: past it the least recently used is resolved again', async (t) => {
  const tokens = ['glcbt-64_capjob0000000000000001', 'glcbt-64_capjob0000000000000002', 'glcbt-64_capjob0000000000000003']
  const gitlab = await startFakeGitlab({
    jobs: Object.fromEntries(tokens.map((token, i) => [token, { id: i + 1, status: 'running', projectId: 100, userId: 7 }])),
    groups: [{ id: 10, fullPath: 'acme', parentId: null }],
    projects: [{ id: 100, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }]
  })
  t.after(() => gitlab.close())
  const jobCalls = async (env: Record<string, string>): Promise<number> => {
    const config = loadConfig({ GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, ...env })
    const client = createGitlabClientFromConfig(config)
    t.after(() => client.close())
    const resolver = createResolverFromConfig(config, client)
    const before = gitlab.calls.job
    // Each token once, then the first again.
    for (const token of [...tokens, tokens[0]!]) assert.equal((await resolver.resolve(token)).jobId, tokens.indexOf(token) + 1)
    return gitlab.calls.job - before
  }
  assert.equal(await jobCalls({}), 3, 'the default keeps all three')
  assert.equal(await jobCalls({ GATE_IDENTITY_CACHE_MAX_TOKENS: '2' }), 4, 'two kept: the first was dropped for the third')
  assert.throws(() => loadConfig({ GATE_IDENTITY_CACHE_MAX_TOKENS: '0' }), /GATE_IDENTITY_CACHE_MAX_TOKENS must be at least 1/)
})
