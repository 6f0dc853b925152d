// Finding: the Maintainer-only package rules checked the role behind tokens only, and a request
// without one was "left to GitLab". GitLab's API also takes a signed-in browser session (the
// session cookie with its CSRF token, lib/gitlab/auth/auth_finders.rb `find_user_from_warden`,
// last in the precedence), so a Developer sending their own session cookie uploaded where the
// project keeps the format's writes to Maintainers. A session is now held to the same rule;
// cookies that are no session (GitLab shows no user for them) change nothing.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const GENERIC_PUT = '/api/v4/projects/200/packages/generic/tool/1.0/tool.bin'
const MAVEN_PUT = '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'
const json = { 'content-type': 'application/json' }
const session = (token: string): string => `_gitlab_session=${token}`

test('a Developer\'s browser session cannot upload where a format\'s writes are kept to Maintainers', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { generic: { write: 'maintainer' }, maven: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length

  for (const [name, path, headers] of [
    ['session cookie', GENERIC_PUT, { cookie: session(USERS.developer), 'x-csrf-token': 'csrf' }],
    ['session cookie among others', MAVEN_PUT, { cookie: `lb=1; ${session(USERS.developer)}; theme=dark`, 'x-csrf-token': 'csrf' }],
    ['session cookie, percent-encoded name', GENERIC_PUT, { cookie: `%5Fgitlab_session=${USERS.developer}`, 'x-csrf-token': 'csrf' }],
    ['a Maintainer\'s token beside a Developer\'s session', GENERIC_PUT, { cookie: session(USERS.developer), 'private-token': USERS.maintainer }]
  ] as const) {
    const answer = await send(g.url, 'PUT', path, headers, 'bytes')
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY', name)
  }
  const viaDelete = await send(g.url, 'DELETE', '/api/v4/projects/200/packages/5', { cookie: session(USERS.developer), 'x-csrf-token': 'csrf' })
  assert.equal(viaDelete.status, 403, `format-agnostic delete: ${viaDelete.text}`)
  assert.equal(g.seen.length, before, 'no refused write reached the upstream')

  const maintainer = await send(g.url, 'PUT', GENERIC_PUT, { cookie: session(USERS.maintainer), 'x-csrf-token': 'csrf' }, 'bytes')
  assert.equal(maintainer.status, 200, `a Maintainer's session passes: ${maintainer.text}`)
  const notSession = await send(g.url, 'PUT', GENERIC_PUT, { cookie: 'lb=node-3; theme=dark', 'private-token': USERS.maintainer }, 'bytes')
  assert.equal(notSession.status, 200, `cookies GitLab shows no user for change nothing: ${notSession.text}`)
  assert.equal(g.seen.length, before + 2)
  const read = await send(g.url, 'GET', GENERIC_PUT, { cookie: session(USERS.developer) })
  assert.equal(read.status, 200, 'reads are not limited')
})

test('a session on a format without rules is left to GitLab', async t => {
  const g = await adminGate(t)
  const answer = await send(g.url, 'PUT', GENERIC_PUT, { cookie: session(USERS.developer), 'x-csrf-token': 'csrf' }, 'bytes')
  assert.equal(answer.status, 200, answer.text)
})
