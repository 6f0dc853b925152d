// npm's instance and group APIs: the accessed project holds the newest npm package of exactly
// that name, under the root namespace of its @scope (instance) or within the group, as GitLab's
// own npm metadata endpoint names it (its tarball URLs); of several projects, the newest in
// GitLab's group packages API (a fuzzy name filter, paginated); then decided as on /projects/:id.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from './world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const distTag = (name: string, tag = 'latest'): string => `/api/v4/packages/npm/-/package/${name.replace('/', '%2f')}/dist-tags/${tag}`
const distTags = (name: string): string => `/api/v4/packages/npm/-/package/${name.replace('/', '%2f')}/dist-tags`
const groupDistTag = (group: string, name: string): string => `/api/v4/groups/${group}/-/packages/npm/-/package/${name.replace('/', '%2f')}/dist-tags/latest`

test('npm dist-tags (instance and group): refused outside the allowlist and with read_packages only, allowed with default permissions and to the own project', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(pkg('@acme/tool', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  for (const path of [distTag('@acme/tool'), groupDistTag('10', '@acme/tool'), groupDistTag('acme', '@acme/tool')]) {
    const outsider = await send(g.url, 'PUT', path, job(TOKENS.tools), '"1.0.0"')
    assert.equal(outsider.json().code, 'NOT_ALLOWLISTED', path)
    assert.equal((await send(g.url, 'DELETE', path, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED', path)
    const readOnly = await send(g.url, 'PUT', path, job(TOKENS.app), '"1.0.0"')
    assert.equal(readOnly.json().code, 'MISSING_POLICIES', path)
    assert.deepEqual((await decisionOf(g, path)).missing_policies, ['admin_packages'])
    assert.equal(forwarded(g, path), 0, path)
    assert.equal((await send(g.url, 'PUT', path, job(TOKENS.web), '"1.0.0"')).status, 200, path)
    assert.equal((await decisionOf(g, path)).reason, 'DEFAULT_PERMISSIONS', path)
    assert.equal((await send(g.url, 'PUT', path, job(TOKENS.lib), '"1.0.0"')).status, 200, path)
    assert.equal((await decisionOf(g, path)).reason, 'SELF_ACCESS', path)
  }
  // Reads: read_packages suffices; the metadata route checks the allowlist only.
  assert.equal((await send(g.url, 'GET', '/api/v4/packages/npm/-/package/@acme%2ftool/dist-tags', job(TOKENS.app))).status, 200)
  assert.equal((await send(g.url, 'GET', '/api/v4/packages/npm/-/package/@acme%2ftool/dist-tags', job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  assert.equal((await send(g.url, 'GET', '/api/v4/packages/npm/@acme%2ftool', job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  assert.equal((await send(g.url, 'GET', '/api/v4/packages/npm/@acme%2ftool', job(TOKENS.app))).status, 200)
})

test('npm: the newest of two packages of that name wins', async t => {
  const g = await projectsGate(t)
  // Older in acme/lib (where the app job may only read), newer in the app job's own project.
  g.gitlab.packages.push(pkg('@acme/widget', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/widget', '2.0.0', 'npm', 100, '2026-03-01T00:00:00Z'))
  const res = await send(g.url, 'PUT', distTag('@acme/widget'), job(TOKENS.app), '"2.0.0"')
  assert.equal(res.status, 200, res.text)
  const log = await decisionOf(g, distTag('@acme/widget'))
  assert.deepEqual([log.reason, log.accessed_project_id], ['SELF_ACCESS', 100])
})

test('npm: a name that matches fuzzily but not exactly is not taken; unscoped names and unknown scopes are no project', async t => {
  const g = await projectsGate(t)
  // "@acme/tool" is a substring of "@acme/toolbox" (newer, in the app's own project).
  g.gitlab.packages.push(pkg('@acme/tool', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/toolbox', '1.0.0', 'npm', 100, '2026-02-01T00:00:00Z'))
  const res = await send(g.url, 'PUT', distTag('@acme/tool'), job(TOKENS.app), '"1.0.0"')
  assert.equal(res.json().code, 'MISSING_POLICIES', 'acme/lib\'s package, not the fuzzy match')
  // A name no package has exactly: nothing protected, GitLab answers.
  const missing = await send(g.url, 'PUT', distTag('@acme/to'), job(TOKENS.tools), '"1.0.0"')
  assert.equal(missing.status, 200)
  assert.equal((await decisionOf(g, distTag('@acme/to'))).reason, 'NO_PROJECT')
  for (const path of [distTag('left-pad'), distTag('@nobody/thing'), '/api/v4/packages/npm/left-pad', '/api/v4/packages/npm/@types%2fnode']) {
    const r = await send(g.url, path.includes('dist-tags') ? 'PUT' : 'GET', path, job(TOKENS.tools), path.includes('dist-tags') ? '"1"' : undefined)
    assert.equal(r.status, 200, path)
    assert.equal((await decisionOf(g, path)).reason, 'NO_PROJECT', path)
  }
})

test('npm: a package GitLab does not have is forwarded, with request forwarding on (GitLab redirects to npmjs.org) or off (404)', async t => {
  for (const forwarding of [true, false]) {
    const g = await projectsGate(t)
    g.gitlab.npmForwarding = forwarding
    g.gitlab.packages.push(pkg('@acme/tool', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
    // A public package read through GitLab, as a job's npm install does.
    for (const path of ['/api/v4/packages/npm/@babel%2fcore', '/api/v4/groups/acme/-/packages/npm/@babel%2fcore', '/api/v4/packages/npm/@acme%2fother']) {
      const r = await send(g.url, 'GET', path, job(TOKENS.tools))
      assert.equal(r.status, 200, `${String(forwarding)} ${path}`)
      assert.equal(forwarded(g, path), 1, path)
      assert.equal((await decisionOf(g, path)).reason, 'NO_PROJECT', path)
    }
    // A package it has is still decided on its project.
    assert.equal((await send(g.url, 'GET', '/api/v4/packages/npm/@acme%2ftool', job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED')
  }
})

test('npm: a package of one project is found from the metadata alone; of two, the newest is found on a later page of the list', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(pkg('@acme/one', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  g.gitlab.resetCalls()
  assert.equal((await send(g.url, 'PUT', distTag('@acme/one'), job(TOKENS.app), '"1.0.0"')).json().code, 'MISSING_POLICIES')
  assert.deepEqual([g.gitlab.calls.npm_metadata, g.gitlab.calls.packages], [1, 0])
  g.gitlab.maxPerPage = 2
  for (let i = 0; i < 5; i++) g.gitlab.packages.push(pkg(`@acme/lib-${i}`, '1.0.0', 'npm', 100, `2026-02-0${i + 1}T00:00:00Z`))
  g.gitlab.packages.push(pkg('@acme/lib', '1.0.0', 'npm', 100, '2025-12-01T00:00:00Z'), pkg('@acme/lib', '2.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  g.gitlab.resetCalls()
  const res = await send(g.url, 'PUT', distTag('@acme/lib'), job(TOKENS.app), '"1.0.0"')
  assert.equal(res.json().code, 'MISSING_POLICIES', 'the newest of the exact name, on the third page, is acme/lib\'s')
  assert.deepEqual([g.gitlab.calls.npm_metadata, g.gitlab.calls.packages], [1, 4], 'the list read whole')
})

test('npm: a scope that is a user namespace is found through the metadata', async t => {
  const g = await projectsGate(t)
  g.gitlab.userNamespaces.add('alice')
  g.gitlab.projects.set(900, { id: 900, pathWithNamespace: 'alice/tool', namespace: { id: 9000, kind: 'user', fullPath: 'alice', parentId: null } })
  g.gitlab.packages.push(pkg('@alice/tool', '1.0.0', 'npm', 900, '2026-01-01T00:00:00Z'))
  const res = await send(g.url, 'PUT', distTag('@alice/tool'), job(TOKENS.tools), '"1"')
  assert.equal(res.status, 403)
  const log = await decisionOf(g, distTag('@alice/tool'))
  assert.deepEqual([log.decision, log.accessed_project_id], ['deny', 900])
  assert.equal(forwarded(g, distTag('@alice/tool')), 0)
  const none = await send(g.url, 'PUT', distTag('@alice/none'), job(TOKENS.tools), '"1"')
  assert.equal(none.status, 200)
  assert.equal((await decisionOf(g, distTag('@alice/none'))).reason, 'NO_PROJECT')
  const denied = await projectsGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  assert.equal((await send(denied.url, 'PUT', distTag('@alice/tool'), job(TOKENS.tools), '"1"')).json().code, 'PROJECT_NOT_IN_URL')
})

test('npm: GitLab failing is a 503; lookups are cached, "no project" too', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(pkg('@acme/tool', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.web))).status, 200)
  g.gitlab.failWith.npm_metadata = 500
  const down = await send(g.url, 'PUT', distTag('@acme/tool'), job(TOKENS.web), '"1"')
  assert.equal(down.status, 503)
  assert.equal(down.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
  assert.equal(forwarded(g, distTag('@acme/tool')), 0)
  delete g.gitlab.failWith.npm_metadata
  g.gitlab.resetCalls()
  for (let i = 0; i < 3; i++) {
    assert.equal((await send(g.url, 'GET', distTags('@acme/tool'), job(TOKENS.web))).status, 200)
    assert.equal((await send(g.url, 'GET', distTags('@acme/nothing'), job(TOKENS.web))).status, 200)
  }
  assert.equal(g.gitlab.calls.npm_metadata, 2)
  // A write asks GitLab each time (test/security/package-lookup-cache-writes.test.ts).
  for (let i = 0; i < 2; i++) assert.equal((await send(g.url, 'PUT', distTag('@acme/tool'), job(TOKENS.web), '"1"')).status, 200)
  assert.equal(g.gitlab.calls.npm_metadata, 4)
})

test('npm: packages GitLab does not install from are not taken; more pages than read without an exact match fail closed', async t => {
  const g = await projectsGate(t)
  // The newest is being deleted: GitLab's finder skips it, and so does the gate.
  g.gitlab.packages.push(pkg('@acme/gone', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'), pkg('@acme/gone', '2.0.0', 'npm', 100, '2026-02-01T00:00:00Z', 'pending_destruction'))
  assert.equal((await send(g.url, 'PUT', distTag('@acme/gone'), job(TOKENS.app), '"1"')).json().code, 'MISSING_POLICIES')
  // Tarballs of two projects; eleven pages of newer fuzzy matches, the exact name on none of the ten read.
  g.gitlab.packages.push(pkg('@acme/many', '1.0.0', 'npm', 100, '2025-01-01T00:00:00Z'), pkg('@acme/many', '2.0.0', 'npm', 200, '2025-01-02T00:00:00Z'))
  g.gitlab.maxPerPage = 1
  for (let i = 0; i < 11; i++) g.gitlab.packages.push(pkg(`@acme/many-${i}`, '1.0.0', 'npm', 100, `2026-03-${String(i + 1).padStart(2, '0')}T00:00:00Z`))
  const res = await send(g.url, 'PUT', distTag('@acme/many'), job(TOKENS.app), '"1"')
  assert.equal(res.status, 502)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_FAILED')
  assert.equal(forwarded(g, distTag('@acme/many')), 0)
})
