// Finding: npm's package metadata at the instance and group levels (`GET /packages/npm/:name`,
// `GET /groups/:id/-/packages/npm/:name`) was decided as a route that skips policies, as an older
// docs page lists it. GitLab's source declares it `job_token_policies: :read_packages` and checks
// them at the project of the newest package of the name (lib/api/concerns/packages/
// npm_namespace_endpoints.rb: `authorize_job_token_policies!(project_or_nil)`; its request specs
// enforce read_packages at every scope). So a job whose fine-grained entry keeps it from a
// project's packages (no read_packages) read that project's npm metadata (versions, dependencies,
// checksums, tarball URLs, dist-tags) through the instance or group route, which the project's own
// metadata route refused it. The two routes now need read_packages, as the project route does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const NAMESPACE_METADATA = ['/api/v4/packages/npm/@acme%2flibpkg', '/api/v4/groups/acme/-/packages/npm/@acme%2flibpkg', '/api/v4/groups/10/-/packages/npm/@acme%2flibpkg']
const PROJECT_METADATA = '/api/v4/projects/200/packages/npm/@acme%2flibpkg'

/** acme/lib (200) lists the app job's project (100) with these policies only; its npm package is @acme/libpkg. */
async function libListsApp (g: TestGate, policies: string[]): Promise<void> {
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, entries: [{ targetType: 'project', targetId: 100, defaultPermissions: false, jobTokenPolicies: policies, addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z' }] })
}

test('npm metadata through the instance and group routes needs read_packages, as through the project route', async t => {
  const g = await projectsGate(t)
  g.gitlab.packages.push(pkg('@acme/libpkg', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  await libListsApp(g, ['read_releases'])
  // The project's own metadata route refuses the job...
  const own = await send(g.url, 'GET', PROJECT_METADATA, job(TOKENS.app))
  assert.equal(own.json().code, 'MISSING_POLICIES')
  // ...and so do the instance and group routes that serve the same document, with GitLab's message.
  for (const path of NAMESPACE_METADATA) {
    const res = await send(g.url, 'GET', path, job(TOKENS.app))
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'MISSING_POLICIES', path)
    assert.equal(res.json().message, '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permission is required: read_packages.')
    assert.equal(forwarded(g, path), 0, path)
    assert.equal((await decisionOf(g, path)).reason, 'MISSING_POLICIES', path)
  }

  // With read_packages (or admin_packages, which implies it) the metadata is read as before.
  for (const policies of [['read_packages'], ['admin_packages']]) {
    await libListsApp(g, policies)
    for (const path of NAMESPACE_METADATA) {
      const res = await send(g.url, 'GET', path, job(TOKENS.app))
      assert.equal(res.status, 200, `${policies.join()} ${path}: ${res.text}`)
      assert.equal((await decisionOf(g, path)).reason, 'POLICIES_GRANTED', path)
    }
  }
  // A default-permissions entry and the project's own jobs need no policy.
  const { version: _v, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, entries: [{ targetType: 'project', targetId: 100, defaultPermissions: true, jobTokenPolicies: [], addedBy: { id: 1 }, createdAt: '2026-01-01T00:00:00Z' }] })
  for (const path of NAMESPACE_METADATA) {
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.app))).status, 200, path)
    assert.equal((await decisionOf(g, path)).reason, 'DEFAULT_PERMISSIONS', path)
    assert.equal((await send(g.url, 'GET', path, job(TOKENS.lib))).status, 200, path)
    assert.equal((await decisionOf(g, path)).reason, 'SELF_ACCESS', path)
  }
  // A private project's metadata is refused to a job outside its allowlist; a public project's,
  // whose package registry is enabled, passes as through the project's own route (GitLab decides).
  for (const path of NAMESPACE_METADATA) assert.equal((await send(g.url, 'GET', path, job(TOKENS.tools))).json().code, 'NOT_ALLOWLISTED', path)
  const other = await projectsGate(t)
  other.gitlab.packages.push(pkg('@acme/libpkg', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  other.gitlab.projects.set(200, { ...other.gitlab.projects.get(200)!, visibility: 'public' })
  for (const path of [PROJECT_METADATA, ...NAMESPACE_METADATA]) {
    const res = await send(other.url, 'GET', path, job(TOKENS.tools))
    assert.equal(res.status, 200, `${path}: ${res.text}`)
    assert.equal((await decisionOf(other, path)).reason, 'PUBLIC_PROJECT_FEATURES', path)
  }
})
