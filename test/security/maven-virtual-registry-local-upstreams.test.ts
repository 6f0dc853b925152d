// A Maven virtual registry (`/virtual_registries/packages/maven/:id/*path`) serves a file from its
// local upstreams first: GitLab projects and groups a Maintainer of the registry's top-level group
// linked to it (VirtualRegistries::Upstreams::CheckService, Local::CheckService), their package
// files found by Packages::Maven::GroupsAndProjectsPackageFilesFinder without any user, and knows
// nothing of the gate's package rules. The gate deferred every such download as touching no
// single project, so a project's `maven` `read: false` held on its own routes only: a job read its
// Maven packages through any registry that named the project, or a group above it, as a local
// upstream. Such reads are now refused where a project among the local upstreams keeps Maven
// reads from job tokens, as reads through a group route are.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const file = (registry: string): string => `/api/v4/virtual_registries/packages/maven/${registry}/com/acme/lib/1.0/lib-1.0.jar`
const remote = { id: 1, name: 'central', url: 'https://repo.maven.apache.org/maven2', upstream_type: 'remote' }

/** acme/lib (200, in group acme, 10) keeps Maven reads from job tokens. */
async function gate (t: TestContext): Promise<TestGate> {
  const g = await startTestGate(t)
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { maven: { read: false, write: 'maintainer' } } })
  g.gitlab.virtualRegistries.set(5, [remote, { id: 2, name: 'lib', upstream_type: 'local', local_project_id: 200 }])
  g.gitlab.virtualRegistries.set(6, [{ id: 3, name: 'acme', upstream_type: 'local', local_group_id: 10 }, remote])
  g.gitlab.virtualRegistries.set(7, [remote, { id: 4, name: 'tools', upstream_type: 'local', local_project_id: 300 }])
  return g
}

test('a download through a Maven virtual registry holds its local upstreams\' package rules', async t => {
  const g = await gate(t)
  // The project itself, a group above it, and the registry id as Grape's Integer reads it.
  for (const registry of ['5', '6', '+5', '0d6']) {
    for (const method of ['GET', 'HEAD']) {
      const res = await send(g.url, method, file(registry), job(TOKENS.web))
      assert.equal(res.status, 403, `${method} ${registry}: ${res.text}`)
      if (method === 'GET') assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', registry)
    }
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // Registries whose upstreams keep nothing from job tokens, and one GitLab does not have, are
  // left to GitLab as before.
  for (const registry of ['7', '8']) {
    const res = await send(g.url, 'GET', file(registry), job(TOKENS.web))
    assert.equal(res.status, 200, `${registry}: ${res.text}`)
    assert.equal(g.seen.at(-1)!.url, file(registry))
  }
})

test('a registry whose upstreams GitLab cannot list is not deferred unchecked', async t => {
  const g = await gate(t)
  g.gitlab.failWith.registry_upstreams = 500
  const res = await send(g.url, 'GET', file('7'), job(TOKENS.web))
  assert.equal(res.status, 503, res.text)
  assert.equal(res.json().code, 'PROJECT_LOOKUP_UNAVAILABLE')
  // An upstream the gate cannot read (a local one naming no project or group) is no answer either.
  delete g.gitlab.failWith.registry_upstreams
  g.gitlab.virtualRegistries.set(9, [{ id: 5, name: 'odd', upstream_type: 'local' }])
  const odd = await send(g.url, 'GET', file('9'), job(TOKENS.web))
  assert.equal(odd.status, 502, odd.text)
  assert.equal(odd.json().code, 'PROJECT_LOOKUP_FAILED')
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})
