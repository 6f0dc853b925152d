// npm publish sends the package tarball base64-encoded inside a JSON body
// (`_attachments.<file>.data`). GitLab reads a JSON body's top-level members as parameters, a
// `job_token` among them (lib/gitlab/auth/auth_finders.rb), so the gate inspects JSON bodies:
// whole up to GATE_MAX_INSPECTED_BODY_BYTES (64 KiB), and larger ones as they stream, through
// the JSON guard (src/identity/json-guard.ts). A publish of any size passes byte for byte; a
// second credential hidden after megabytes of tarball aborts the upstream request before its end.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { eventually } from '../helpers/eventually.ts'
import { recordingUpstream } from '../helpers/recording-upstream.ts'
import { TOKENS, startTestGate } from '../helpers/gate.ts'
import { send, sendChunked } from '../helpers/http.ts'

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

test('npm publish of a package over 64 KiB is forwarded', async t => {
  const g = await startTestGate(t)
  const body = publishBody(256 * 1024)
  const res = await send(g.url, 'PUT', PUBLISH, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body)
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.at(-1)?.bytes, Buffer.byteLength(body))
})

test('a larger GATE_MAX_INSPECTED_BODY_BYTES reads a larger publish whole', async t => {
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

const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex')

test('a 5 MiB publish streams through byte for byte; another job token after the tarball aborts it before its end', async t => {
  const upstream = await recordingUpstream(t)
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: upstream.url })
  const headers = { 'job-token': TOKENS.lib, 'content-type': 'application/json' }
  const body = publishBody(5 * 1024 * 1024)

  const res = await send(g.url, 'PUT', PUBLISH, headers, body)
  assert.equal(res.status, 200, res.text)
  assert.equal(upstream.requests.length, 1)
  assert.equal(upstream.requests[0]!.complete, true)
  assert.equal(upstream.requests[0]!.sha256, sha256(body), 'forwarded byte for byte')

  // The same body with the request's own token repeated at the end: one credential, forwarded.
  const own = `${body.slice(0, -1)},"job_token":"${TOKENS.lib}"}`
  const same = await send(g.url, 'PUT', PUBLISH, headers, own)
  assert.equal(same.status, 200, same.text)
  assert.equal(upstream.requests[1]!.sha256, sha256(own))

  const hidden = `${body.slice(0, -1)},"job_token":"${TOKENS.tools}"}`
  const refused = await send(g.url, 'PUT', PUBLISH, headers, hidden)
  assert.equal(refused.status, 401, refused.text)
  assert.equal(refused.json().code, 'CREDENTIAL_AMBIGUOUS')
  // Streamed, then cut: wait for the upstream to see its end, whatever it is.
  // The token is 5 MiB in: the guard reaches it only once the upstream request has taken the
  // bytes before it, so there is one, streamed and then cut.
  await eventually(() => upstream.requests.length === 3 && upstream.requests[2]!.closed, { message: 'the upstream request to end' })
  assert.equal(upstream.requests[2]!.complete, false, 'the upstream never received a complete request')
  assert.ok(upstream.requests[2]!.bytes < Buffer.byteLength(hidden))
})

const RELEASES = '/api/v4/projects/200/releases'

test('a chunked JSON body (no declared length) streams through the guard too', async t => {
  const upstream = await recordingUpstream(t)
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: upstream.url })
  const body = publishBody(200 * 1024)
  const pieces = [body.slice(0, 1000), body.slice(1000, 150_000), body.slice(150_000)]
  const ok = await sendChunked(g.url, RELEASES, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, pieces)
  assert.equal(ok.status, 200, ok.body)
  assert.equal(upstream.requests.at(-1)!.sha256, sha256(body))

  // Without a header token, a job token in a streamed body cannot be resolved before it is
  // forwarded: refused, naming the way to send it.
  const smuggled = [`{"name":"@acme/hello","data":"${'A'.repeat(100_000)}",`, `"job_token":"${TOKENS.lib}"}`]
  const refused = await sendChunked(g.url, RELEASES, { 'content-type': 'application/json' }, smuggled)
  assert.equal(refused.status, 401, refused.body)
  assert.equal((JSON.parse(refused.body) as { code: string }).code, 'JSON_CREDENTIAL_NOT_ALLOWED')
  await eventually(() => upstream.requests.every(r => r.closed), { message: 'the upstream request to end' })
  assert.equal(upstream.requests.filter(r => r.complete).length, 1, 'only the clean publish arrived whole')
})

test('a chunked JSON body that ends within the limit is read whole: a job token in it identifies the request', async t => {
  const g = await startTestGate(t)
  const body = JSON.stringify({ name: 'v1.0', tag_name: 'v1.0', job_token: TOKENS.lib })
  const own = await sendChunked(g.url, RELEASES, { 'content-type': 'application/json' }, [body.slice(0, 20), body.slice(20)])
  assert.equal(own.status, 200, own.body)
  assert.equal(g.seen.filter(r => r.url === RELEASES).length, 1)
  assert.equal(g.seen.at(-1)?.bytes, Buffer.byteLength(body))
  // Read whole, the token is decided as a declared body's would be: another project's is refused.
  const other = JSON.stringify({ name: 'v1.0', job_token: TOKENS.tools })
  const refused = await sendChunked(g.url, RELEASES, { 'content-type': 'application/json' }, [other])
  assert.equal(refused.status, 403, refused.body)
  assert.equal((JSON.parse(refused.body) as { code: string }).code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.filter(r => r.url === RELEASES).length, 1, 'the refused release never reached the upstream')
})

test('a large JSON body that does not parse is refused before its end', async t => {
  const upstream = await recordingUpstream(t)
  const g = await startTestGate(t, { GATE_UPSTREAM_URL: upstream.url })
  const body = `${publishBody(300 * 1024).slice(0, -1)},}`
  const res = await send(g.url, 'PUT', PUBLISH, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body)
  assert.equal(res.status, 400, res.text)
  assert.equal(res.json().code, 'BODY_NOT_PARSEABLE')
  await eventually(() => upstream.requests.every(r => r.closed), { message: 'the upstream request to end' })
  assert.ok(upstream.requests.every(r => !r.complete), 'the upstream never received a complete request')
})
