// Conan's instance API: the accessed project is the package's username with `+` read as `/`
// (a number: a project id), looked up with GitLab's projects API, then decided as on
// /projects/:id routes, per-format package rules included.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN } from '../helpers/admin-gate.ts'
import { decisionOf, forwarded, projectsGate } from './world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const upload = (user: string): string => `/api/v4/packages/conan/v1/files/pkg/1.0/${user}/stable/0/export/conanfile.py`
const recipe = (user: string): string => `/api/v4/packages/conan/v1/conans/pkg/1.0/${user}/stable`

test('Conan upload and delete through the instance API: refused outside the allowlist, allowed with admin_packages and to the own project', async t => {
  const g = await projectsGate(t)
  // acme/registry (700) lists only the group `other` (admin_packages); the app job is in acme.
  const refused = await send(g.url, 'PUT', upload('acme+registry'), job(TOKENS.app), 'recipe')
  assert.equal(refused.status, 403, refused.text)
  assert.equal(refused.json().code, 'NOT_ALLOWLISTED')
  assert.match(refused.json().message, /not allowed from app to registry\.$/)
  assert.equal(forwarded(g, upload('acme+registry')), 0, 'GitLab never saw the upload')
  const log = await decisionOf(g, upload('acme+registry'))
  assert.deepEqual([log.decision, log.reason, log.stage, log.accessed_project_id], ['deny', 'NOT_ALLOWLISTED', 'decide', 700])

  const deleteRefused = await send(g.url, 'DELETE', recipe('acme+registry'), job(TOKENS.app))
  assert.equal(deleteRefused.json().code, 'NOT_ALLOWLISTED')

  const allowed = await send(g.url, 'PUT', upload('acme+registry'), job(TOKENS.tools), 'recipe')
  assert.equal(allowed.status, 200, allowed.text)
  assert.equal(forwarded(g, upload('acme+registry')), 1)
  assert.equal((await decisionOf(g, upload('acme+registry'))).reason, 'POLICIES_GRANTED')
  assert.equal((await send(g.url, 'DELETE', recipe('acme+registry'), job(TOKENS.tools))).status, 200)

  const own = await send(g.url, 'PUT', upload('acme+platform+app'), job(TOKENS.app), 'recipe')
  assert.equal(own.status, 200, own.text)
  assert.equal((await decisionOf(g, upload('acme+platform+app'))).reason, 'SELF_ACCESS')
})

test('Conan: read_packages only may download but not upload', async t => {
  const g = await projectsGate(t)
  // acme/lib (200) lists acme/platform/app with read_packages only.
  const download = '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable/download_urls'
  assert.equal((await send(g.url, 'GET', download, job(TOKENS.app))).status, 200)
  assert.equal((await decisionOf(g, download)).reason, 'POLICIES_GRANTED')
  const write = await send(g.url, 'PUT', upload('acme+lib'), job(TOKENS.app), 'recipe')
  assert.equal(write.status, 403)
  assert.equal(write.json().code, 'MISSING_POLICIES')
  assert.equal(write.json().message, '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permission is required: admin_packages.')
  // Outside any allowlist entry, a read is refused too.
  const read = await send(g.url, 'GET', download, job(TOKENS.tools))
  assert.equal(read.json().code, 'NOT_ALLOWLISTED')
})

test('Conan: a numeric username is a project id; "_" and a name without "+" are no project', async t => {
  const g = await projectsGate(t)
  const byId = await send(g.url, 'PUT', upload('700'), job(TOKENS.app), 'recipe')
  assert.equal(byId.json().code, 'NOT_ALLOWLISTED')
  assert.match(byId.json().message, /to registry\.$/)
  assert.equal((await send(g.url, 'PUT', upload('700'), job(TOKENS.tools), 'recipe')).status, 200)

  for (const user of ['_', 'someone', '99999']) {
    const res = await send(g.url, 'PUT', upload(user), job(TOKENS.app), 'recipe')
    assert.equal(res.status, 200, `${user}: forwarded, GitLab answers`)
    const log = await decisionOf(g, upload(user))
    assert.deepEqual([log.decision, log.reason, log.stage], ['deferred', 'NO_PROJECT', 'resolve_grants'], user)
  }
})

test('Conan: a moved project is found through its old path, as GitLab follows redirects there', async t => {
  const g = await projectsGate(t)
  g.gitlab.redirects.set('acme/old-registry', 700)
  const res = await send(g.url, 'PUT', upload('acme+old-registry'), job(TOKENS.app), 'recipe')
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal((await decisionOf(g, upload('acme+old-registry'))).accessed_project_id, 700)
})

test('Conan: a project that restricts Conan writes to Maintainers refuses an upload through the instance API', async t => {
  const g = await projectsGate(t)
  // acme/platform/web's jobs reach acme/lib with default permissions (the acme group entry).
  assert.equal((await send(g.url, 'PUT', upload('acme+lib'), job(TOKENS.web), 'recipe')).status, 200, 'before the rule')
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { conan: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  for (const token of [TOKENS.web, TOKENS.lib]) {
    const res = await send(g.url, 'PUT', upload('acme+lib'), job(token), 'recipe')
    assert.equal(res.status, 403, res.text)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
    assert.match(res.json().message, /conan packages of project #200/)
  }
  assert.equal((await send(g.url, 'GET', recipe('acme+lib'), job(TOKENS.web))).status, 200, 'reads still pass')
})

test('Conan: GitLab down or failing is a 503, never a forward; lookups are cached', async t => {
  const g = await projectsGate(t)
  // The job's own identity is resolved (and cached) first, so only the lookup fails below.
  for (const token of [TOKENS.tools, TOKENS.web]) assert.equal((await send(g.url, 'GET', '/api/v4/job', job(token))).status, 200)
  g.gitlab.failWith.project = 502
  const down = await send(g.url, 'PUT', upload('acme+registry'), job(TOKENS.tools), 'recipe')
  assert.equal(down.status, 503, down.text)
  assert.equal(down.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
  assert.doesNotMatch(down.text, /api\/v4\/projects/, 'no internal detail in the answer')
  assert.equal(forwarded(g, upload('acme+registry')), 0)
  delete g.gitlab.failWith.project

  g.gitlab.resetCalls()
  for (let i = 0; i < 3; i++) assert.equal((await send(g.url, 'PUT', upload('acme+registry'), job(TOKENS.tools), 'recipe')).status, 200)
  // Concurrent requests share one lookup too.
  const statuses = await Promise.all(Array.from({ length: 5 }, () => send(g.url, 'GET', recipe('acme+lib'), job(TOKENS.web))))
  assert.deepEqual(statuses.map(r => r.status), [200, 200, 200, 200, 200])
  assert.equal(g.gitlab.calls.project, 2, 'one lookup of acme/registry, one of acme/lib (identity was cached)')
})
