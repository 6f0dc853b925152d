// Regression: a job from any project may read the packages of a public or internal project whose
// package registry is enabled, allowlist or not, as GitLab's publicly_accessible_feature? and
// ProjectPolicy allow (docs/gitlab-rules.md, "Public and internal projects"). The gate used to
// answer NOT_ALLOWLISTED there. Through real sockets: the gate reads the project's visibility and
// access levels from the fake GitLab (GET /api/v4/projects/:id), only for requests that need them.
//
// The route's feature list is set in a copy of the catalog, so this test states GitLab's rule for
// such a route whatever rows the shipped catalog has.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR } from '../../src/catalog/load.ts'
import type { FakeProject } from '../helpers/fake-gitlab.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const READ_ID = 'get_projects_id_packages_generic_package_name_package_version_path_file_name'
const job = (token: string): Record<string, string> => ({ 'job-token': token })
const read = (project: string | number): string => `/api/v4/projects/${project}/packages/generic/tool/1.0/tool.tar.gz`

/** A catalog copy whose generic package download lists `package_registry`, as GitLab's route does. */
function catalogWithFeatures (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-public-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const file of ['routes.json', 'policies.json', 'routes.schema.json', 'policies.schema.json']) cpSync(join(DEFAULT_CATALOG_DIR, file), join(dir, file))
  const doc = JSON.parse(readFileSync(join(dir, 'routes.json'), 'utf8')) as { routes: Array<Record<string, unknown>> }
  const route = doc.routes.find(r => r.id === READ_ID)
  assert.ok(route !== undefined, READ_ID)
  route.publicAccessFeatures = ['package_registry']
  writeFileSync(join(dir, 'routes.json'), JSON.stringify(doc))
  return dir
}

function addProject (g: TestGate, id: number, path: string, visibility: FakeProject['visibility'], accessLevels: FakeProject['accessLevels'] = {}): void {
  g.gitlab.projects.set(id, { id, pathWithNamespace: path, namespace: { id: 30, kind: 'group', fullPath: path.split('/')[0]!, parentId: null }, visibility, accessLevels })
}

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

test('public and internal projects: packages readable by any job while the registry is enabled', async (t) => {
  const g = await startTestGate(t, { GATE_CATALOG_DIR: catalogWithFeatures(t) })
  // other/tools (300) is in the store with an empty allowlist; 801-806 the store does not know.
  g.gitlab.projects.get(300)!.visibility = 'public'
  addProject(g, 801, 'oss/internal-lib', 'internal')
  addProject(g, 802, 'oss/closed', 'private')
  addProject(g, 803, 'oss/members-only', 'public', { package_registry: 'private' })
  addProject(g, 804, 'oss/no-registry', 'public', { package_registry: 'disabled' })
  addProject(g, 805, 'oss/everyone', 'public', { package_registry: 'public' })

  const cases: Array<{ name: string, project: string | number, status: number, reason: string, message?: string }> = [
    { name: 'public project, empty allowlist', project: 300, status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'public project by full path', project: 'other%2Ftools', status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'internal project the store does not know', project: 801, status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'internal project the store does not know, by full path', project: 'oss%2Finternal-lib', status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'registry open to everyone ("public")', project: 805, status: 200, reason: 'PUBLIC_PROJECT_FEATURES' },
    { name: 'private project', project: 802, status: 403, reason: 'UNKNOWN_PROJECT', message: '403 Forbidden - Authentication by CI/CD job token not allowed from app to closed.' },
    { name: 'registry for members only ("private") goes to the allowlist', project: 803, status: 403, reason: 'UNKNOWN_PROJECT', message: '403 Forbidden - Authentication by CI/CD job token not allowed from app to members-only.' },
    { name: 'registry disabled', project: 804, status: 403, reason: 'UNKNOWN_PROJECT', message: '403 Forbidden - Authentication by CI/CD job token not allowed from app to no-registry.' }
  ]
  for (const c of cases) {
    await t.test(c.name, async () => {
      const before = g.seen.length
      const res = await send(g.url, 'GET', read(c.project), job(TOKENS.app))
      assert.equal(res.status, c.status, res.text)
      assert.equal(lastDecision(g)?.reason, c.reason)
      if (c.status === 200) {
        assert.equal(g.seen.length, before + 1, 'forwarded')
        return
      }
      assert.equal(g.seen.length, before, 'the upstream never saw it')
      const body = res.json()
      assert.equal(body.code, c.reason)
      assert.equal(body.message, c.message)
      assert.equal(typeof body.request_id, 'string')
    })
  }
})

test('public projects: writes still need the allowlist, with GitLab\'s policy message', async (t) => {
  const g = await startTestGate(t, { GATE_CATALOG_DIR: catalogWithFeatures(t) })
  g.gitlab.projects.get(300)!.visibility = 'public'
  const res = await send(g.url, 'PUT', read(300), job(TOKENS.app), 'bytes')
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'MISSING_POLICIES')
  assert.equal(res.json().message, '403 Forbidden - Insufficient permissions to access this resource in project tools. The following token permission is required: admin_packages.')
})

test('public projects: the project is looked up once, and only for requests that need it', async (t) => {
  const g = await startTestGate(t, { GATE_CATALOG_DIR: catalogWithFeatures(t) })
  g.gitlab.projects.get(300)!.visibility = 'public'
  // Identities first, so that only the accessed project's lookups are counted.
  assert.equal((await send(g.url, 'GET', read(100), job(TOKENS.app))).status, 200)
  assert.equal((await send(g.url, 'GET', read(600), job(TOKENS.web))).status, 200)
  g.gitlab.resetCalls()

  // Allowed by the store (acme/lib: app holds read_packages, web's group has default permissions): no lookup.
  assert.equal((await send(g.url, 'GET', read(200), job(TOKENS.app))).status, 200)
  assert.equal((await send(g.url, 'PUT', read(200), job(TOKENS.web), 'x')).status, 200)
  // Self access: no lookup.
  assert.equal((await send(g.url, 'GET', read(100), job(TOKENS.app))).status, 200)
  // A deny on a route without features, with an allowlist entry: the store names the project.
  assert.equal((await send(g.url, 'PUT', read(200), job(TOKENS.app), 'x')).status, 403)
  assert.equal(g.gitlab.calls.project, 0, 'nothing needed the project\'s facts')

  // Outside the allowlist: looked up once, then cached.
  assert.equal((await send(g.url, 'GET', read(300), job(TOKENS.app))).status, 200)
  assert.equal((await send(g.url, 'GET', read(300), job(TOKENS.web))).status, 200)
  assert.equal(g.gitlab.calls.project, 1)
})

test('public projects: GitLab unavailable is a 503, never an allow', async (t) => {
  const g = await startTestGate(t, { GATE_CATALOG_DIR: catalogWithFeatures(t) })
  g.gitlab.projects.get(300)!.visibility = 'public'
  assert.equal((await send(g.url, 'GET', read(100), job(TOKENS.app))).status, 200, 'the identity is cached')
  const before = g.seen.length
  g.gitlab.failWith.project = 503
  const down = await send(g.url, 'GET', read(300), job(TOKENS.app))
  assert.equal(down.status, 503)
  assert.equal(down.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
  g.gitlab.failWith.project = 500
  assert.equal((await send(g.url, 'GET', read(300), job(TOKENS.app))).status, 503, 'a failure is not cached')
  g.gitlab.failWith.project = 403
  const refused = await send(g.url, 'GET', read(300), job(TOKENS.app))
  assert.equal(refused.status, 502)
  assert.equal(refused.json().code, 'PROJECT_LOOKUP_FAILED')
  assert.equal(g.seen.length, before, 'nothing was forwarded')
  delete g.gitlab.failWith.project
  assert.equal((await send(g.url, 'GET', read(300), job(TOKENS.app))).status, 200, 'and GitLab back decides it')
})
