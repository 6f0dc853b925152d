// Finding: the catalog listed Cargo's upload authorization (`PUT .../crates/new/authorize`) but
// not the upload itself, `PUT /projects/:id/packages/cargo/api/v1/crates/new` (`cargo publish`;
// GitLab's Workhorse calls the authorization route on its own). A request to a route the catalog
// does not list is no package route to the gate, so a Developer's `cargo publish` skipped the
// Maintainer-only rule of a project that set `cargo.write`, though the configuration API offered
// it. The upload route is now a Cargo write, decided for job tokens and users alike.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const PUBLISH = '/api/v4/projects/200/packages/cargo/api/v1/crates/new'
const json = { 'content-type': 'application/json' }

test('cargo publish is a Cargo write: a Maintainer-only rule refuses Developers and job tokens', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { cargo: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  for (const [name, headers] of [
    ['Developer, Bearer', { authorization: `Bearer ${USERS.developer}` }],
    ['Developer, bare token', { authorization: USERS.developer }],
    ['own job token', { authorization: `Bearer ${TOKENS.lib}` }]
  ] as const) {
    const answer = await send(g.url, 'PUT', PUBLISH, headers, 'crate')
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY', name)
  }
  assert.equal(g.seen.length, before, 'no refused upload reached the upstream')
  const maintainer = await send(g.url, 'PUT', PUBLISH, { authorization: `Bearer ${USERS.maintainer}` }, 'crate')
  assert.equal(maintainer.status, 200, maintainer.text)
})

test('cargo publish by a job token is decided by the allowlist, not forwarded without its token', async t => {
  const g = await adminGate(t)
  const own = await send(g.url, 'PUT', PUBLISH, { authorization: `Bearer ${TOKENS.lib}` }, 'crate')
  assert.equal(own.status, 200, own.text)
  assert.match(String(g.seen.at(-1)?.headers.authorization), /^Bearer /, 'the project\'s own job publishes with its token')
  const stranger = await send(g.url, 'PUT', PUBLISH, { authorization: `Bearer ${TOKENS.tools}` }, 'crate')
  assert.equal(stranger.status, 403, stranger.text)
  assert.equal(stranger.json().code, 'NOT_ALLOWLISTED')
})
