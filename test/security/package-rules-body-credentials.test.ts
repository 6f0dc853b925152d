// Finding: the per-package-format Maintainer rule checked the user's role from header
// credentials only, so a Developer's personal access token sent in a form or JSON body (GitLab
// reads `private_token` and `access_token` from the body, ahead of the headers) got past
// `write: "maintainer"`. Every credential GitLab could take the request from is checked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send, sendChunked } from '../helpers/http.ts'

const MAVEN_PUT = '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'
const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
const form = { 'content-type': 'application/x-www-form-urlencoded' }
const json = { 'content-type': 'application/json' }

function multipart (fields: Record<string, string>): { headers: Record<string, string>, body: string } {
  const b = 'rules-boundary'
  const parts = Object.entries(fields).map(([name, value]) => `--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
  return { headers: { 'content-type': `multipart/form-data; boundary=${b}` }, body: parts.join('') + `--${b}--\r\n` }
}

test('a Developer\'s token in a form, JSON or multipart body is refused by a Maintainer-only rule; nothing reaches the upstream', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { maven: { write: 'maintainer' }, pypi: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length

  const upload = multipart({ private_token: USERS.developer, name: 'pkg', version: '1.0' })
  for (const [name, path, headers, body] of [
    ['form private_token', MAVEN_PUT, form, `private_token=${USERS.developer}`],
    ['form access_token', MAVEN_PUT, form, `access_token=${USERS.developer}`],
    ['JSON private_token', MAVEN_PUT, json, JSON.stringify({ private_token: USERS.developer })],
    ['JSON bearer_token', MAVEN_PUT, json, JSON.stringify({ bearer_token: USERS.developer })],
    ['multipart private_token (PyPI upload)', PYPI_UPLOAD, upload.headers, upload.body],
    ['Maintainer in a header, Developer in the body', MAVEN_PUT, { ...form, 'private-token': USERS.maintainer }, `private_token=${USERS.developer}`]
  ] as const) {
    const answer = await send(g.url, path === PYPI_UPLOAD ? 'POST' : 'PUT', path, headers, body)
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'PACKAGE_MAINTAINER_ONLY', name)
  }
  assert.equal(g.seen.length, before, 'no refused write reached the upstream')

  const allowed = await send(g.url, 'PUT', MAVEN_PUT, form, `private_token=${USERS.maintainer}`)
  assert.equal(allowed.status, 200, 'a Maintainer\'s token in the body passes')
  assert.equal(g.seen.length, before + 1)
})

test('a credential in a streamed (chunked) multipart package upload is refused before the upload completes', async t => {
  const g = await adminGate(t)
  await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN }, JSON.stringify({ package_registry: { pypi: { write: 'maintainer' } } }))
  const before = g.seen.length
  const upload = multipart({ name: 'pkg', private_token: USERS.developer, version: '1.0' })
  const answer = await sendChunked(g.url, PYPI_UPLOAD, upload.headers, upload.body.match(/[^]{1,16}/g)!)
  assert.equal(answer.status, 401, answer.body)
  assert.equal(JSON.parse(answer.body).code, 'MULTIPART_CREDENTIAL_NOT_ALLOWED')
  assert.equal(g.seen.length, before, 'the upload never completed upstream')
  const clean = multipart({ name: 'pkg', version: '1.0' })
  const passed = await sendChunked(g.url, PYPI_UPLOAD, { ...clean.headers, 'private-token': USERS.maintainer }, [clean.body])
  assert.equal(passed.status, 200, 'a Maintainer with the token in a header passes')
})

