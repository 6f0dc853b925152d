// npm publish sends the package tarball base64-encoded inside a JSON body
// (`_attachments.<file>.data`). GitLab reads a JSON body's top-level members as parameters, a
// `job_token` among them (lib/gitlab/auth/auth_finders.rb), so the gate inspects JSON bodies; it
// reads them whole, up to GATE_MAX_INSPECTED_BODY_BYTES (64 KiB), and refuses longer ones (413
// BODY_TOO_LARGE_TO_INSPECT). Any package whose tarball is over about 48 KiB is then refused
// through the gate, with a valid job token and the right policy (seen with the real npm in
// test/clients/npm.clients.ts). Large JSON bodies need a streaming scan of their top-level
// members, as large multipart bodies have (src/identity/multipart.ts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { TOKENS, startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

function publishBody (attachmentBytes: number): string {
  const data = randomBytes(attachmentBytes).toString('base64')
  return JSON.stringify({
    _id: '@acme/hello',
    name: '@acme/hello',
    'dist-tags': { latest: '1.0.0' },
    versions: { '1.0.0': { name: '@acme/hello', version: '1.0.0', dist: { shasum: '0', tarball: 'http://gitlab/x.tgz' } } },
    _attachments: { '@acme/hello-1.0.0.tgz': { content_type: 'application/octet-stream', data, length: attachmentBytes } }
  })
}

const PUBLISH = '/api/v4/projects/200/packages/npm/@acme%2fhello'

test('npm publish of a small package: the JSON body is inspected and forwarded', async t => {
  const g = await startTestGate(t)
  const body = publishBody(16 * 1024)
  const res = await send(g.url, 'PUT', PUBLISH, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body)
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.at(-1)?.bytes, Buffer.byteLength(body))
})

test('npm publish of a package over 64 KiB is forwarded', { todo: 'JSON bodies over GATE_MAX_INSPECTED_BODY_BYTES are refused (413), npm publish included' }, async t => {
  const g = await startTestGate(t)
  const body = publishBody(256 * 1024)
  const res = await send(g.url, 'PUT', PUBLISH, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body)
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.at(-1)?.bytes, Buffer.byteLength(body))
})

test('the workaround until then: a larger GATE_MAX_INSPECTED_BODY_BYTES lets a larger publish through, inspected', async t => {
  const g = await startTestGate(t, { GATE_MAX_INSPECTED_BODY_BYTES: String(1024 * 1024) })
  const body = publishBody(256 * 1024)
  const res = await send(g.url, 'PUT', PUBLISH, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body)
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.at(-1)?.bytes, Buffer.byteLength(body))
  // Still read: a second, different job token in the body is refused as ambiguous.
  const smuggled = JSON.stringify({ ...JSON.parse(body) as object, job_token: TOKENS.tools })
  const refused = await send(g.url, 'PUT', PUBLISH, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, smuggled)
  assert.equal(refused.status, 401, refused.text)
  assert.equal(refused.json().code, 'CREDENTIAL_AMBIGUOUS')
})
