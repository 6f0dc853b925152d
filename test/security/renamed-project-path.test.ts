// Finding: a full path in the URL was resolved with the store's path index, which held the path a
// project had when it was first configured (the configuration API never refreshed it) and which
// every later write pointed at that project again. After a rename in GitLab (700 acme/registry ->
// acme/registry-old) and a new project 701 taking the freed path, a job request to
// /projects/acme%2Fregistry/... was decided with 700's allowlist and forwarded, though GitLab
// serves 701; a write to 700 by its own Maintainer took the path back after 701 was configured;
// 701's package rules stopped binding path-addressed uploads; the operator naming acme/registry
// wrote 700; GraphQL mutations naming a target by path acted on the entry stored under that path.
//
// Now a path names the project GitLab routes it to now (GET /projects/<path> with the service
// token, cached), a write records the path GitLab gives the project now, a write that brings no
// news of its path never takes it from another project, and GraphQL targets are matched by id.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { createGate } from '../../src/gate/server.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { groupChain, startFakeGitlab, type FakeGitlab } from '../helpers/fake-gitlab.ts'
import { startRedis } from '../helpers/redis.ts'

const JOB = 'glcbt-64_appjobrunning0000000000'
const OLD_OWNER = 'glpat-maintainer-of-700'
const NEW_OWNER = 'glpat-maintainer-of-701'
const DEV = 'glpat-developer-of-701'
const LEAD = 'glpat-maintainer-of-app-sees-both'
const ADMIN = 'gate-operator-secret-token'
const acme = { id: 10, kind: 'group' as const, fullPath: 'acme', parentId: null }
const platform = { id: 11, kind: 'group' as const, fullPath: 'acme/platform', parentId: 10 }
const PKG = '/api/v4/projects/acme%2Fregistry/packages/generic/secret/1.0.0/secret.tar.gz'

interface World {
  readonly url: string
  readonly gitlab: FakeGitlab
  readonly store: GrantStore
  /** Requests GitLab served (the fake's fallback), as `METHOD url`. */
  readonly forwarded: string[]
  /** In GitLab: 700 becomes acme/registry-old; 701, private, takes acme/registry unless `vacate`. */
  rename (options?: { vacate?: boolean }): void
}

const STORES = [['memory', false], ['redis', true]] as const

/**
 * A real gate before the fake GitLab: 100 acme/platform/app runs the job; 700 acme/registry lets
 * every acme/platform job in (written through the gate by its Maintainer). Group lookups by path
 * are answered as GitLab answers a signed-in caller; everything else is GitLab serving the request.
 */
async function world (t: TestContext, redis: boolean, extra: Record<string, string> = {}): Promise<World> {
  const forwarded: string[] = []
  // eslint-disable-next-line prefer-const
  let gitlab: FakeGitlab
  gitlab = await startFakeGitlab({
    groups: [...groupChain([10, 'acme'], [11, 'platform']), { id: 20, fullPath: 'other', parentId: null }],
    jobs: { [JOB]: { id: 1, status: 'running', projectId: 100, userId: 7 } },
    projects: [
      { id: 100, pathWithNamespace: 'acme/platform/app', namespace: platform },
      { id: 700, pathWithNamespace: 'acme/registry', namespace: acme }
    ],
    users: {
      [OLD_OWNER]: { id: 70, username: 'old', access: { 700: 40, 100: 40 } },
      [NEW_OWNER]: { id: 71, username: 'new', access: { 701: 40, 100: 40 } },
      [DEV]: { id: 72, username: 'dev', access: { 701: 30 } },
      [LEAD]: { id: 73, username: 'lead', access: { 100: 40, 700: 20, 701: 20 } }
    },
    fallback: (req, res) => {
      const group = /^\/api\/v4\/groups\/([^/?]+)$/.exec(req.url ?? '')
      if (group !== null && req.method === 'GET' && !/^\d+$/.test(group[1]!)) {
        req.resume()
        const key = decodeURIComponent(group[1]!).toLowerCase()
        const found = [...gitlab.groups.values()].find(g => g.fullPath.toLowerCase() === key)
        res.writeHead(found === undefined ? 404 : 200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(found === undefined ? { message: '404 Group Not Found' } : { id: found.id, full_path: found.fullPath, parent_id: found.parentId }))
        return
      }
      req.resume()
      req.on('end', () => {
        forwarded.push(`${req.method ?? ''} ${req.url ?? ''}`)
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"upstream":true}')
      })
    }
  })
  t.after(() => gitlab.close())
  const env: Record<string, string> = {
    GATE_UPSTREAM_URL: gitlab.url,
    GATE_LISTEN: '127.0.0.1:0',
    GATE_HEALTH_LISTEN: '127.0.0.1:0',
    GATE_SERVICE_TOKEN: gitlab.serviceToken,
    GATE_ADMIN_TOKEN: ADMIN,
    GATE_DRAIN_TIMEOUT_MS: '2000',
    GATE_DECISION_LOG_REPEAT_WINDOW_MS: '0',
    ...extra
  }
  if (redis) env.GATE_REDIS_URL = (await startRedis({ after: fn => t.after(fn) })).url
  const config = loadConfig(env)
  const store = redis ? await createStoreFromConfig(config) : await createMemoryStore()
  const gate = createGate(config, { store, resolver: createJobResolver({ upstream: gitlab.url, serviceToken: gitlab.serviceToken }), logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  const url = `http://127.0.0.1:${gate.address().port}`
  const add = await call(url, 'POST', '/api/v4/projects/700/job_token_scope/groups_allowlist', OLD_OWNER, { target_group_id: 11 })
  assert.equal(add.status, 201, add.text)
  return {
    url,
    gitlab,
    store,
    forwarded,
    rename ({ vacate = false } = {}) {
      gitlab.projects.set(700, { id: 700, pathWithNamespace: 'acme/registry-old', namespace: acme })
      if (vacate) gitlab.redirects.set('acme/registry', 700)
      else gitlab.projects.set(701, { id: 701, pathWithNamespace: 'acme/registry', namespace: acme })
    }
  }
}

async function call (url: string, method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: any, text: string }> {
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(token === null ? {} : token.startsWith('glcbt-') ? { 'job-token': token } : { 'private-token': token }),
      ...(body === undefined || typeof body === 'string' ? {} : { 'content-type': 'application/json' }),
      ...headers
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) })
  })
  const text = await res.text()
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed, text }
}

/** Invalidations reach the cache through the store's subscription (Redis: another connection). */
const settle = async (): Promise<void> => await new Promise(resolve => setTimeout(resolve, 100))

for (const [name, redis] of STORES) {
  test(`renamed path (${name}): a job request by path is decided by the project that holds the path in GitLab now`, async t => {
    const w = await world(t, redis, { GATE_PROJECT_LOOKUP_TTL_MS: '100' })
    const before = await call(w.url, 'GET', PKG, JOB)
    assert.equal(before.status, 200, `700 holds the path and lets the job in: ${before.text}`)
    w.rename()
    // The path's project is kept for GATE_PROJECT_LOOKUP_TTL_MS, then asked of GitLab again.
    await new Promise(resolve => setTimeout(resolve, 150))
    const after = await call(w.url, 'GET', PKG.replace('acme%2Fregistry', 'ACME%2FRegistry'), JOB)
    assert.equal(after.status, 403, `701 (no allowlist) holds acme/registry now: ${after.text}`)
    assert.equal(after.body.code, 'UNKNOWN_PROJECT')
    assert.deepEqual(w.forwarded, [`GET ${PKG}`], 'only the request made while 700 held the path reached GitLab')
  })

  test(`renamed path (${name}): a write to the old project by id records its new path and leaves the path to the project holding it`, async t => {
    const w = await world(t, redis)
    w.rename()
    const own = await call(w.url, 'PATCH', '/api/v4/projects/acme%2Fregistry/job_token_scope', NEW_OWNER, { enabled: true })
    assert.equal(own.status, 204, own.text)
    assert.equal((await w.store.get(701))?.projectPath, 'acme/registry')
    const write = await call(w.url, 'PATCH', '/api/v4/projects/700/job_token_scope', OLD_OWNER, { enabled: true })
    assert.equal(write.status, 204, write.text)
    assert.equal((await w.store.get(700))?.projectPath, 'acme/registry-old', 'the path GitLab gives 700 now')
    assert.equal(await w.store.resolvePath('acme/registry'), 701, 'the store\'s index keeps acme/registry for 701')
    assert.equal(await w.store.resolvePath('acme/registry-old'), 700)
    await settle()
    const job = await call(w.url, 'GET', PKG, JOB)
    assert.equal(job.status, 403, `decided by 701's empty allowlist: ${job.text}`)
    assert.deepEqual(w.forwarded, [])
  })
}

test('renamed path: a moved project\'s old path, held by no project, is still that project (GitLab follows the redirect)', async t => {
  const w = await world(t, false)
  w.rename({ vacate: true })
  const res = await call(w.url, 'GET', PKG, JOB)
  assert.equal(res.status, 200, `GitLab serves 700 at its old path, and 700 lets the job in: ${res.text}`)
  assert.deepEqual(w.forwarded, [`GET ${PKG}`])
})

test('renamed path: 701\'s Maintainer-only package rule binds uploads by path, whatever 700\'s Maintainer writes', async t => {
  const w = await world(t, false)
  w.rename()
  const rule = await call(w.url, 'PATCH', '/api/v4/projects/acme%2Fregistry/job_token_permissions', NEW_OWNER, { package_registry: { generic: { write: 'maintainer' } } })
  assert.equal(rule.status, 200, rule.text)
  const write = await call(w.url, 'PATCH', '/api/v4/projects/700/job_token_scope', OLD_OWNER, { enabled: true })
  assert.equal(write.status, 204, write.text)
  await settle()
  const upload = await call(w.url, 'PUT', '/api/v4/projects/acme%2Fregistry/packages/generic/tool/1.0.0/tool.bin', DEV, 'x', { 'content-type': 'application/octet-stream' })
  assert.equal(upload.status, 403, upload.text)
  assert.equal(upload.body.code, 'PACKAGE_MAINTAINER_ONLY')
  assert.deepEqual(w.forwarded, [])
})

test('renamed path: the operator naming acme/registry writes 701, the project GitLab calls so now', async t => {
  const w = await world(t, false)
  w.rename()
  const res = await call(w.url, 'PATCH', '/api/v4/projects/acme%2Fregistry/job_token_permissions', ADMIN, { package_registry: { generic: { write: 'maintainer' } } })
  assert.equal(res.status, 200, res.text)
  assert.deepEqual((await w.store.get(701))?.packageRules, { generic: { write: 'maintainer' } })
  assert.equal((await w.store.get(700))?.packageRules, undefined)
})

test('renamed path: a GraphQL mutation naming a target by path acts on the target GitLab finds there now, not the entry stored under it', async t => {
  const w = await world(t, false)
  const mutation = (name: string, input: string): string => JSON.stringify({ query: `mutation { ${name}(input: { ${input} }) { errors } }` })
  // 100 (acme/platform/app) allowlists 700 by path.
  const add = await call(w.url, 'POST', '/api/graphql', LEAD, mutation('ciJobTokenScopeAddProject', 'projectPath: "acme/platform/app", targetProjectPath: "acme/registry"'))
  assert.equal(add.status, 200, add.text)
  assert.deepEqual(add.body.data.ciJobTokenScopeAddProject.errors, [])
  assert.deepEqual((await w.store.get(100))?.entries.map(e => [e.targetId, e.targetPath]), [[700, 'acme/registry']])
  w.rename()
  const remove = await call(w.url, 'POST', '/api/graphql', LEAD, mutation('ciJobTokenScopeRemoveProject', 'projectPath: "acme/platform/app", targetProjectPath: "acme/registry"'))
  assert.equal(remove.status, 200, remove.text)
  assert.match(JSON.stringify(remove.body.data.ciJobTokenScopeRemoveProject.errors), /project 701 is not in the job token scope allowlist/)
  assert.deepEqual((await w.store.get(100))?.entries.map(e => e.targetId), [700], '700\'s entry, stored as acme/registry, stays')
})

test('transferred project: its root namespace\'s job_token_policies_enabled is the root GitLab puts it under now', async t => {
  const w = await world(t, false, { GATE_PROJECT_LOOKUP_TTL_MS: '100' })
  // 700's entry for acme/platform holds read_jobs only; acme turns fine-grained policies off.
  const narrow = await call(w.url, 'PATCH', '/api/v4/projects/700/job_token_scope/groups_allowlist/11', OLD_OWNER, { default_permissions: false, job_token_policies: ['read_jobs'] })
  assert.equal(narrow.status, 200, narrow.text)
  await w.store.putNamespace({ namespacePath: 'acme', jobTokenPoliciesEnabled: false })
  const under = await call(w.url, 'GET', '/api/v4/projects/700/packages/generic/secret/1.0.0/secret.tar.gz', JOB)
  assert.equal(under.status, 200, `acme's setting turns the policies off: ${under.text}`)
  // In GitLab 700 moves to the root namespace `other` (no setting there); nobody writes 700.
  w.gitlab.projects.set(700, { id: 700, pathWithNamespace: 'other/registry', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } })
  await new Promise(resolve => setTimeout(resolve, 150))
  const moved = await call(w.url, 'GET', '/api/v4/projects/700/packages/generic/secret/1.0.0/secret.tar.gz', JOB)
  assert.equal(moved.status, 403, `other has no setting: the policies decide: ${moved.text}`)
  assert.equal(moved.body.code, 'MISSING_POLICIES')
})
