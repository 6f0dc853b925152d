// Finding: a package upload on a route the catalog did not list (Cargo's publish call, before
// the catalog had it) was not a package route to the gate, so a Developer's token went to GitLab
// unchecked where the project keeps that format's writes to Maintainers. A write or delete under
// /projects/:id/packages/<format>/ that matches no catalog route is now held to that format's
// rule; reads, formats without a rule and Maintainers are left alone.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import type { TestGate } from '../helpers/gate.ts'

/** acme/lib (200) keeps Cargo and generic writes, and npm deletes, to Maintainers. */
async function world (t: TestContext): Promise<TestGate> {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { cargo: { write: 'maintainer' }, generic: { write: 'maintainer' }, npm: { delete: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  return g
}

// Paths no catalog route matches, under formats the catalog knows.
const WRITES: ReadonlyArray<readonly [string, string]> = [
  ['PUT', '/api/v4/projects/200/packages/cargo/api/v1/crates/new/some-future-step'],
  ['POST', '/api/v4/projects/acme%2Flib/packages/generic/tool/1.0/tool.bin/some-future-step'],
  ['PATCH', '/api/v4/projects/200/packages/cargo/api/v1/crates/pkg/1.0.0/yank'],
  ['DELETE', '/api/v4/projects/200/packages/npm/some-future-delete']
]

test('a package write the catalog does not list is held to its format\'s rule', async (t) => {
  const g = await world(t)
  const before = g.seen.length
  for (const [method, path] of WRITES) {
    const res = await fetch(g.url + path, { method, headers: { 'private-token': USERS.developer } })
    const body = await res.json() as { code?: string }
    assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(body)}`)
    assert.equal(body.code, 'PACKAGE_MAINTAINER_ONLY', `${method} ${path}`)
  }
  assert.deepEqual(g.seen.slice(before).map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
})

test('Maintainers, reads and formats without a rule are GitLab\'s', async (t) => {
  const g = await world(t)
  const before = g.seen.length
  for (const [method, path] of WRITES) {
    const res = await fetch(g.url + path, { method, headers: { 'private-token': USERS.maintainer } })
    assert.equal(res.status, 200, `${method} ${path}`)
  }
  const others: ReadonlyArray<readonly [string, string]> = [
    ['GET', '/api/v4/projects/200/packages/cargo/api/v1/crates/new/some-future-step'],
    // npm keeps only deletes to Maintainers; Maven has no rule.
    ['PUT', '/api/v4/projects/200/packages/npm/some-future-write'],
    ['PUT', '/api/v4/projects/200/packages/maven/some-future-write'],
    // Not a package format's path.
    ['PUT', '/api/v4/projects/200/variables/X']
  ]
  for (const [method, path] of others) {
    const res = await fetch(g.url + path, { method, headers: { 'private-token': USERS.developer } })
    assert.equal(res.status, 200, `${method} ${path}`)
  }
  assert.equal(g.seen.length - before, WRITES.length + others.length)
})
