// `job-token-gate import-allowlists --from-gitlab` against a fake GitLab on port 0 that answers
// the REST calls (the project list with keyset pagination, each project's job token scope and
// its two allowlists with offset pagination) and the GraphQL allowlist query (cursor pagination,
// an outbound entry to ignore, a deprecated policy). The import fills a memory store's state file
// and a private Redis; a gate on that store then allows what GitLab allowlisted and refuses the
// rest.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { runCli } from '../../src/cli/main.ts'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createStoreFromConfig } from '../../src/gate/deps.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import type { GrantStore } from '../../src/grants/store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { groupChain, startFakeGitlab, type FakeGitlab } from '../helpers/fake-gitlab.ts'
import { send } from '../helpers/http.ts'
import { startRedis } from '../helpers/redis.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SERVICE_TOKEN = 'glpat-import-service-token-0001'

const TOKENS = {
  app: 'glcbt-64_importappjob00000000000',
  tools: 'glcbt-64_importtoolsjob0000000000',
  lib: 'glcbt-64_importlibjob00000000000'
} as const

interface FakeEntry {
  readonly id: number
  readonly path: string
  /** null: default permissions. */
  readonly policies: readonly string[] | null
  readonly direction?: 'inbound' | 'outbound'
}

interface FakeScope {
  readonly inbound: boolean
  readonly projects: readonly FakeEntry[]
  readonly groups: readonly FakeEntry[]
}

const PROJECTS = [
  { id: 100, path: 'acme/platform/app', ns: { id: 11, fullPath: 'acme/platform', parentId: 10 } },
  { id: 200, path: 'acme/lib', ns: { id: 10, fullPath: 'acme', parentId: null } },
  { id: 300, path: 'other/tools', ns: { id: 20, fullPath: 'other', parentId: null } },
  { id: 700, path: 'acme/registry', ns: { id: 10, fullPath: 'acme', parentId: null } }
] as const

// What GitLab holds. REST's project allowlist lists the project itself; GraphQL's also lists
// outbound entries (the removed direction), which decide nothing.
const SCOPES: Record<number, FakeScope> = {
  100: { inbound: false, projects: [{ id: 100, path: 'acme/platform/app', policies: null }], groups: [] },
  200: {
    inbound: true,
    projects: [{ id: 200, path: 'acme/lib', policies: null }, { id: 100, path: 'acme/platform/app', policies: ['READ_PACKAGES'] }, { id: 700, path: 'acme/registry', policies: null }],
    groups: [{ id: 20, path: 'other', policies: null }]
  },
  300: { inbound: true, projects: [{ id: 300, path: 'other/tools', policies: null }, { id: 100, path: 'acme/platform/app', policies: null }, { id: 200, path: 'acme/lib', policies: ['READ_JOBS'], direction: 'outbound' }], groups: [] },
  700: {
    inbound: true,
    projects: [{ id: 700, path: 'acme/registry', policies: null }],
    groups: [
      { id: 10, path: 'acme', policies: ['ADMIN_PACKAGES', 'READ_CONTAINERS'] },
      { id: 11, path: 'acme/platform', policies: ['READ_RELEASES'] },
      { id: 20, path: 'other', policies: null }
    ]
  }
}

interface ImportGitlab {
  readonly fake: FakeGitlab
  /** Answer GraphQL with this status for this project path. */
  readonly graphqlFails: Map<string, number>
  /** Answer GraphQL as a GitLab before 17.6 (no ciJobTokenScopeAllowlist field). */
  old: boolean
  readonly graphqlCalls: () => number
}

/** A page of `items`, GitLab's offset pagination (X-Next-Page), two per page. */
function offsetPage (res: ServerResponse, url: URL, items: readonly unknown[]): void {
  const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1)
  const text = JSON.stringify(items.slice((page - 1) * 2, page * 2))
  res.writeHead(200, { 'content-type': 'application/json', 'x-next-page': page * 2 < items.length ? String(page + 1) : '' })
  res.end(text)
}

function json (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

async function startImportGitlab (t: TestContext): Promise<ImportGitlab> {
  const state = { old: false, graphql: 0 }
  const graphqlFails = new Map<string, number>()
  const byPath = (path: string): typeof PROJECTS[number] | undefined => PROJECTS.find(p => p.path.toLowerCase() === path.toLowerCase())

  const graphql = (res: ServerResponse, body: { query?: string, variables?: { fullPath?: string, after?: string | null } }): void => {
    state.graphql++
    const project = byPath(body.variables?.fullPath ?? '')
    const failure = project === undefined ? undefined : graphqlFails.get(project.path)
    if (failure !== undefined) { json(res, failure, { message: String(failure) }); return }
    if (state.old) { json(res, 200, { errors: [{ message: "Field 'ciJobTokenScopeAllowlist' doesn't exist on type 'Project'" }] }); return }
    if (project === undefined) { json(res, 200, { data: { project: null } }); return }
    const connection = /projectsAllowlist\(/.test(body.query ?? '') ? 'projectsAllowlist' : 'groupsAllowlist'
    const scope = SCOPES[project.id]!
    const list = connection === 'projectsAllowlist' ? scope.projects.filter(e => e.id !== project.id) : scope.groups
    const start = body.variables?.after == null ? 0 : Number(/^cursor:(\d+)$/.exec(body.variables.after)?.[1])
    const nodes = list.slice(start, start + 2).map(e => ({
      direction: e.direction ?? 'inbound',
      defaultPermissions: e.policies === null,
      jobTokenPolicies: e.policies ?? [],
      createdAt: '2025-03-01T10:00:00Z',
      addedBy: { id: 'gid://gitlab/User/5', username: 'alice' },
      // GraphQL IDs: bare for projects, global ids for groups; both are read.
      target: connection === 'projectsAllowlist' ? { id: String(e.id), fullPath: e.path } : { id: `gid://gitlab/Group/${e.id}`, fullPath: e.path }
    }))
    const more = start + 2 < list.length
    json(res, 200, { data: { project: { id: `gid://gitlab/Project/${project.id}`, ciJobTokenScopeAllowlist: { [connection]: { nodes, pageInfo: { hasNextPage: more, endCursor: more ? `cursor:${start + 2}` : null } } } } } })
  }

  const fallback = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://fake')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const service = req.headers['private-token'] === SERVICE_TOKEN
      if (url.pathname === '/api/graphql' && req.method === 'POST') {
        if (!service) { json(res, 401, { message: '401 Unauthorized' }); return }
        graphql(res, JSON.parse(Buffer.concat(chunks).toString('utf8')))
        return
      }
      if (url.pathname === '/api/v4/user') {
        if (!service) { json(res, 401, { message: '401 Unauthorized' }); return }
        json(res, 200, { id: 1, username: 'root', is_admin: true })
        return
      }
      if (url.pathname === '/api/v4/projects') {
        if (!service) { json(res, 401, { message: '401 Unauthorized' }); return }
        // Keyset pagination: the next page is only in the Link header.
        const after = Number(url.searchParams.get('id_after') ?? 0)
        const page = PROJECTS.filter(p => p.id > after).slice(0, 2)
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (page.length === 2 && PROJECTS.some(p => p.id > page[1]!.id)) {
          const next = new URL(url.href)
          next.searchParams.set('id_after', String(page[1]!.id))
          headers.link = `<http://gitlab.example.com${next.pathname}${next.search}>; rel="next"`
        }
        res.writeHead(200, headers)
        res.end(JSON.stringify(page.map(p => ({ id: p.id, path_with_namespace: p.path, name: p.path.split('/').at(-1) }))))
        return
      }
      const m = /^\/api\/v4\/projects\/(\d+)\/job_token_scope(?:\/(allowlist|groups_allowlist))?$/.exec(url.pathname)
      if (m !== null) {
        if (!service) { json(res, 401, { message: '401 Unauthorized' }); return }
        const scope = SCOPES[Number(m[1])]
        if (scope === undefined) { json(res, 404, { message: '404 Project Not Found' }); return }
        if (m[2] === undefined) json(res, 200, { inbound_enabled: scope.inbound, outbound_enabled: false })
        else if (m[2] === 'allowlist') offsetPage(res, url, scope.projects.filter(e => e.direction !== 'outbound').map(e => ({ id: e.id, path_with_namespace: e.path, name: e.path })))
        // GitLab's BasicGroupDetails: no full_path (GraphQL gives it).
        else offsetPage(res, url, scope.groups.map(e => ({ id: e.id, web_url: `http://gitlab.example.com/groups/${e.path}`, name: e.path.split('/').at(-1) })))
        return
      }
      // The gate's forwarded traffic.
      json(res, 200, { upstream: true, method: req.method, url: req.url })
    })
  }

  const fake = await startFakeGitlab({
    serviceToken: SERVICE_TOKEN,
    jobs: {
      [TOKENS.app]: { id: 1, status: 'running', projectId: 100, userId: 7 },
      [TOKENS.tools]: { id: 2, status: 'running', projectId: 300, userId: 8 },
      [TOKENS.lib]: { id: 3, status: 'running', projectId: 200, userId: 9 }
    },
    groups: [...groupChain([10, 'acme'], [11, 'platform']), { id: 20, fullPath: 'other', parentId: null }],
    projects: PROJECTS.map(p => ({ id: p.id, pathWithNamespace: p.path, namespace: { id: p.ns.id, kind: 'group' as const, fullPath: p.ns.fullPath, parentId: p.ns.parentId } })),
    fallback
  })
  t.after(() => fake.close())
  return {
    fake,
    graphqlFails,
    get old () { return state.old },
    set old (value: boolean) { state.old = value },
    graphqlCalls: () => state.graphql
  }
}

function gitlabEnv (g: ImportGitlab, extra: Record<string, string>): Record<string, string> {
  return { GATE_UPSTREAM_URL: g.fake.url, GATE_SERVICE_TOKEN: SERVICE_TOKEN, ...extra }
}

async function cli (env: Record<string, string>, ...argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(['import-allowlists', '--from-gitlab', ...argv], { out: s => { out += s }, err: s => { err += s } }, env)
  return { code, out, err }
}

function tempDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-import-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A gate on `store` in front of the fake GitLab; the store is the gate's to close. */
async function gateOn (t: TestContext, g: ImportGitlab, store: GrantStore): Promise<string> {
  const config = loadConfig(gitlabEnv(g, { GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_DRAIN_TIMEOUT_MS: '1000' }))
  const resolver = createJobResolver({ upstream: g.fake.url, serviceToken: SERVICE_TOKEN })
  const gate = createGate(config, { store, resolver, logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  return `http://127.0.0.1:${gate.address().port}`
}

/** What the imported allowlists must decide, through a gate. */
async function assertDecisions (gate: string): Promise<void> {
  const ask = async (token: string, method: string, path: string): Promise<{ status: number, code?: string }> => {
    const res = await send(gate, method, path, { 'job-token': token })
    return { status: res.status, ...(res.status === 200 ? {} : { code: res.json().code }) }
  }
  // acme/lib allowlists acme/platform/app with read_packages only.
  assert.deepEqual(await ask(TOKENS.app, 'GET', '/api/v4/projects/200/packages'), { status: 200 })
  assert.deepEqual(await ask(TOKENS.app, 'PUT', '/api/v4/projects/200/packages/npm/foo'), { status: 403, code: 'MISSING_POLICIES' })
  // acme/lib allowlists the group other (default permissions): other/tools' jobs get in.
  assert.deepEqual(await ask(TOKENS.tools, 'GET', '/api/v4/projects/200/packages'), { status: 200 })
  // other/tools allowlists acme/platform/app only; acme/lib's outbound entry is not inbound.
  assert.deepEqual(await ask(TOKENS.app, 'GET', '/api/v4/projects/300/packages'), { status: 200 })
  assert.deepEqual(await ask(TOKENS.lib, 'GET', '/api/v4/projects/300/packages'), { status: 403, code: 'NOT_ALLOWLISTED' })
  // acme/registry: the nearest group of acme/platform/app is acme/platform (read_releases), not acme (admin_packages).
  assert.deepEqual(await ask(TOKENS.app, 'GET', '/api/v4/projects/700/packages'), { status: 403, code: 'MISSING_POLICIES' })
  assert.deepEqual(await ask(TOKENS.lib, 'PUT', '/api/v4/projects/700/packages/npm/foo'), { status: 200 })
}

/** The stored documents, as the import must have written them. */
async function assertStored (store: GrantStore): Promise<void> {
  const lib = await store.get(200)
  assert.ok(lib !== null)
  assert.equal(lib.inboundEnabled, true)
  assert.deepEqual(lib.entries.map(e => [e.targetType, e.targetId, e.targetPath, e.defaultPermissions, e.jobTokenPolicies]), [
    ['project', 100, 'acme/platform/app', false, ['read_packages']],
    ['project', 700, 'acme/registry', true, []],
    ['group', 20, 'other', true, []]
  ])
  assert.deepEqual(lib.entries[0]!.addedBy, { id: 5, username: 'alice' })
  assert.equal(lib.entries[0]!.createdAt, '2025-03-01T10:00:00Z')
  assert.deepEqual((await store.get(300))?.entries.map(e => [e.targetType, e.targetId]), [['project', 100]])
  // read_containers is deprecated: left out, which only narrows the entry.
  assert.deepEqual((await store.get(700))?.entries.map(e => [e.targetId, e.jobTokenPolicies]), [[10, ['admin_packages']], [11, ['read_releases']], [20, []]])
  const app = await store.get(100)
  assert.equal(app?.inboundEnabled, false)
  assert.deepEqual(app?.entries, [], 'the project itself is no entry')
}

test('import into a state file through the command line; the gate then decides as GitLab allowlisted; a second run writes nothing', async (t) => {
  const g = await startImportGitlab(t)
  const file = join(tempDir(t), 'grants.json')
  // Asynchronously: the fake GitLab answers from this process.
  const run = await new Promise<{ status: number | null, stdout: string, stderr: string }>(resolve => {
    const child = execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'import-allowlists', '--from-gitlab'], {
      env: { ...process.env, ...gitlabEnv(g, { GATE_STATE_FILE: file }) }, encoding: 'utf8', timeout: 60_000
    }, (_err, stdout, stderr) => { resolve({ status: child.exitCode, stdout, stderr }) })
  })
  assert.equal(run.status, 0, run.stderr)
  const lines = run.stdout.trim().split('\n')
  assert.deepEqual(lines, [
    'acme/platform/app (100): written (version 1); 0 entries, 0 with policies, 0 skipped',
    'acme/lib (200): written (version 1); 3 entries, 1 with policies, 0 skipped',
    'other/tools (300): written (version 1); 1 entries, 0 with policies, 0 skipped',
    'acme/registry (700): written (version 1); 3 entries, 2 with policies, 1 skipped',
    '  skipped policy (not accepted by the gate) group 10: read_containers',
    'total: 4 projects, 4 written, 0 unchanged, 0 gone; 7 entries, 3 with policies, 1 skipped'
  ])
  // Every write is an audit event, in the log (stderr) since the memory store's audit is volatile.
  const audits = run.stderr.split('\n').filter(l => l.includes('"audit":true')).map(l => JSON.parse(l) as Record<string, any>)
  assert.equal(audits.length, 4)
  assert.ok(audits.every(a => a.action === 'import_allowlist_from_gitlab' && a.actor.kind === 'operator' && a.request_id === audits[0]!.request_id))
  assert.match(audits[0]!.request_id, /^import-/)
  assert.ok(!run.stdout.includes(SERVICE_TOKEN) && !run.stderr.includes(SERVICE_TOKEN), 'the token is never printed')
  assert.ok(g.fake.targets.every(target => !target.includes(SERVICE_TOKEN)), 'the token never travels in a URL')

  const store = await createMemoryStore({ file })
  await assertStored(store)
  const versions = await Promise.all([100, 200, 300, 700].map(id => store.version(id)))
  await assertDecisions(await gateOn(t, g, store))

  // Idempotent: the same GitLab, nothing to write.
  const again = await cli(gitlabEnv(g, { GATE_STATE_FILE: file }))
  assert.equal(again.code, 0, again.err)
  assert.match(again.out, /^acme\/lib \(200\): unchanged; 3 entries, 1 with policies, 0 skipped$/m)
  assert.match(again.out, /^total: 4 projects, 0 written, 4 unchanged, 0 gone;/m)
  assert.ok(!again.err.includes('"audit":true'), 'no audit event without a change')
  const reread = await createMemoryStore({ file })
  t.after(() => reread.close())
  assert.deepEqual(await Promise.all([100, 200, 300, 700].map(id => reread.version(id))), versions)
})

test('import into Redis: stored with audit events; a change in GitLab is written once; --project limits the import', async (t) => {
  const redis = await startRedis(t)
  const g = await startImportGitlab(t)
  const env = gitlabEnv(g, { GATE_REDIS_URL: redis.url })
  const first = await cli(env)
  assert.equal(first.code, 0, first.err)
  assert.match(first.out, /^total: 4 projects, 4 written, 0 unchanged, 0 gone; 7 entries, 3 with policies, 1 skipped$/m)
  const store = await createStoreFromConfig(loadConfig(env))
  await assertStored(store)
  const audit = await store.readAudit(200, { offset: 0, limit: 10 })
  assert.equal(audit.total, 1)
  const event = audit.events[0]!
  assert.equal(event.action, 'import_allowlist_from_gitlab')
  assert.deepEqual(event.actor, { kind: 'operator' })
  assert.match(event.requestId, /^import-/)
  assert.deepEqual(event.before, { inbound_enabled: true, entries: [] })
  assert.equal((event.after as { entries: unknown[] }).entries.length, 3)
  await assertDecisions(await gateOn(t, g, store))

  // A second run writes nothing; after GitLab changes one project, only that one is written.
  const second = await cli(env)
  assert.match(second.out, /^total: 4 projects, 0 written, 4 unchanged, 0 gone;/m)
  const before = SCOPES[300]!
  SCOPES[300] = { ...before, groups: [{ id: 10, path: 'acme', policies: ['READ_JOBS'] }] }
  t.after(() => { SCOPES[300] = before })
  const limited = await cli(env, '--project', 'other/tools', '--project', '200')
  assert.equal(limited.code, 0, limited.err)
  assert.deepEqual(limited.out.trim().split('\n'), [
    'other/tools (300): written (version 2); 2 entries, 1 with policies, 0 skipped',
    'acme/lib (200): unchanged; 3 entries, 1 with policies, 0 skipped',
    'total: 2 projects, 1 written, 1 unchanged, 0 gone; 5 entries, 2 with policies, 0 skipped'
  ])
  assert.equal((await store.readAudit(300, { offset: 0, limit: 10 })).total, 2)
  assert.equal((await store.readAudit(200, { offset: 0, limit: 10 })).total, 1)
  const missing = await cli(env, '--project', 'acme/nothing-here')
  assert.equal(missing.code, 1)
  assert.match(missing.err, /project acme\/nothing-here was not found in GitLab/)
})

test('--dry-run prints what would be written and writes nothing', async (t) => {
  const g = await startImportGitlab(t)
  const file = join(tempDir(t), 'grants.json')
  const { code, out, err } = await cli(gitlabEnv(g, { GATE_STATE_FILE: file }), '--dry-run', '--project', 'acme/lib')
  assert.equal(code, 0, err)
  assert.deepEqual(out.trim().split('\n'), [
    'acme/lib (200): would be written; 3 entries, 1 with policies, 0 skipped',
    '  inbound_enabled true',
    '  project 100 acme/platform/app: read_packages',
    '  project 700 acme/registry: default permissions',
    '  group 20 other: default permissions',
    'total: 1 projects, 1 would be written, 0 unchanged, 0 gone; 3 entries, 1 with policies, 0 skipped; dry run, nothing written'
  ])
  assert.equal(existsSync(file), false, 'nothing was saved')
  assert.ok(!err.includes('"audit":true'))
})

test('GitLab failing or unreachable: a non-zero exit naming what failed, and nothing written', async (t) => {
  const g = await startImportGitlab(t)
  const file = join(tempDir(t), 'grants.json')
  const env = gitlabEnv(g, { GATE_STATE_FILE: file })
  // The last project fails after the others were read: none is written.
  g.graphqlFails.set('acme/registry', 500)
  const failed = await cli(env)
  assert.equal(failed.code, 1)
  assert.match(failed.err, /^job-token-gate import-allowlists: GitLab answered 500 reading the projectsAllowlist of acme\/registry \(GraphQL\)\n$/m)
  assert.equal(failed.out, '', 'no project is reported as written')
  assert.equal(existsSync(file), false)
  g.graphqlFails.clear()

  const refused = await cli(gitlabEnv(g, { GATE_STATE_FILE: file, GATE_SERVICE_TOKEN: 'glpat-not-the-service-token' }))
  assert.equal(refused.code, 1)
  assert.match(refused.err, /GitLab refused GATE_SERVICE_TOKEN reading the service token's user \(\/user\) \(401\): the import needs an administrator's token/)
  assert.ok(!refused.err.includes('glpat-not-the-service-token'))

  const noToken = await cli({ GATE_UPSTREAM_URL: g.fake.url, GATE_STATE_FILE: file })
  assert.equal(noToken.code, 2)
  assert.match(noToken.err, /GATE_SERVICE_TOKEN is required/)

  await g.fake.close()
  const down = await cli(env)
  assert.equal(down.code, 1)
  assert.match(down.err, /GitLab did not answer while reading the service token's user \(ECONNREFUSED\)/)
  assert.equal(existsSync(file), false)
})

test('a GitLab before 17.6 (no ciJobTokenScopeAllowlist in GraphQL): entries with default permissions', async (t) => {
  const g = await startImportGitlab(t)
  g.old = true
  const file = join(tempDir(t), 'grants.json')
  const { code, out, err } = await cli(gitlabEnv(g, { GATE_STATE_FILE: file }), '--project', '200', '--project', '700')
  assert.equal(code, 0, err)
  assert.match(out, /^acme\/lib \(200\): written \(version 1\); 3 entries, 0 with policies, 0 skipped$/m)
  assert.match(out, /^total: 2 projects, 2 written, .*before 17\.6: every entry has default permissions\)$/m)
  assert.ok(g.graphqlCalls() <= 2, 'once the field is known missing, it is not asked for again (at most once per project read at the same time)')
  const store = await createMemoryStore({ file })
  t.after(() => store.close())
  assert.ok((await store.get(700))?.entries.every(e => e.defaultPermissions && e.jobTokenPolicies.length === 0))
})
