// Finding: GitLab's Debian distributions API (`/projects/:id/debian_distributions[/:codename]`,
// lib/api/concerns/packages/debian_distribution_endpoints.rb) creates and updates a project's
// distributions behind authorize_create_package! and deletes them behind
// authorize_destroy_package!, the abilities of Debian uploads and deletes. Its paths lie outside
// `/packages/debian/`, so neither the catalog nor the fallback for package writes it does not list
// knew them: a Developer could create, change or delete the Debian distributions of a project
// that keeps Debian writes and deletes to Maintainers. They are now a Debian write (POST, PUT)
// or delete (DELETE) of that project for the users' rule.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import type { TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }

const world = async (t: TestContext, rule: Record<string, string>): Promise<TestGate> => await gateWithPackageRule(t, 'debian', rule)

const CHANGES: ReadonlyArray<readonly [string, string]> = [
  ['POST', '/api/v4/projects/200/debian_distributions'],
  ['PUT', '/api/v4/projects/acme%2Flib/debian_distributions/sid'],
  ['DELETE', '/api/v4/projects/200/debian_distributions/sid']
]

test('a Developer may not create, change or delete Debian distributions where Debian writes are Maintainers\'', async t => {
  const g = await world(t, { write: 'maintainer' })
  const before = g.seen.length
  for (const [method, path] of CHANGES) {
    const answer = await send(g.url, method, path, { ...json, 'private-token': USERS.developer }, '{"codename":"sid"}')
    assert.equal(answer.status, 403, `${method} ${path}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY', `${method} ${path}`)
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  for (const [method, path] of CHANGES) {
    const answer = await send(g.url, method, path, { ...json, 'private-token': USERS.maintainer }, '{"codename":"sid"}')
    assert.equal(answer.status, 200, `Maintainer ${method} ${path}: ${answer.text}`)
  }
})

test('deleting a distribution follows the delete rule; reading one is GitLab\'s', async t => {
  const g = await world(t, { delete: 'maintainer' })
  const refused = await send(g.url, 'DELETE', '/api/v4/projects/200/debian_distributions/sid', { 'private-token': USERS.developer })
  assert.equal(refused.status, 403, refused.text)
  assert.equal(refused.json().code, 'PACKAGE_MAINTAINER_ONLY')
  for (const [method, path] of [
    ['POST', '/api/v4/projects/200/debian_distributions'],
    ['GET', '/api/v4/projects/200/debian_distributions/sid'],
    ['GET', '/api/v4/projects/200/debian_distributions/sid/key.asc']
  ] as const) {
    const answer = await send(g.url, method, path, { 'private-token': USERS.developer })
    assert.equal(answer.status, 200, `${method} ${path}: ${answer.text}`)
  }
})
