// Finding: a multipart Content-Type's boundary written with white space around its '=', or with a
// no-break space (byte 0xA0), was read by the gate otherwise than by Rack. Rack keeps white space
// after the '=' in the boundary (`boundary= abc` is " abc", delimited by "-- abc") and, its `\s`
// being ASCII, finds no boundary at all in `boundary\xA0=abc` (and reads the body as a form); the
// gate skipped both (JavaScript's `\s` takes 0xA0) and read "abc", found no part and so no job
// token and no `_method`. A job token of a project not on the allowlist, in the body, went to
// GitLab undecided; with the token in a header and `X-HTTP-Method-Override: GET`, the gate decided
// GET while Rack routed the body's `_method=DELETE`. On /api/graphql the same hid GitLab's own
// allowlist mutations from the gate. Such a boundary is now refused (test/rack/boundary-spellings
// checks every spelling against Rack).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'
import { rawRequest, send, sendChunked } from '../helpers/http.ts'

// acme/lib (200): other/tools' job (TOKENS.tools) is not on its allowlist; acme/platform/app's
// (TOKENS.app) may only read its packages. Releases is no Workhorse upload route: the body
// reaches Rails as sent.
const RELEASES = '/api/v4/projects/200/releases'
const PACKAGE = '/api/v4/projects/200/packages/5'

function form (delimiter: string, fields: Record<string, string>): Buffer {
  let text = ''
  for (const [name, value] of Object.entries(fields)) text += `${delimiter}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  return Buffer.from(`${text}${delimiter}--\r\n`, 'latin1')
}

/** A request whose header lines are written byte for byte (a 0xA0 stays one byte). */
async function latin1Request (url: string, lines: readonly string[], body: Buffer): Promise<{ status: number, code: unknown }> {
  const answer = await rawRequest(Number(new URL(url).port), lines, body)
  return { status: answer.status, code: (JSON.parse(answer.body) as { code?: unknown }).code }
}

test('control: boundary=abc with the token of a job not on the allowlist is refused as such', async t => {
  const g = await startTestGate(t)
  const r = await send(g.url, 'POST', RELEASES, { 'content-type': 'multipart/form-data; boundary=abc' }, form('--abc', { tag_name: 'v9', job_token: TOKENS.tools }))
  assert.equal(r.status, 403, r.text)
  assert.equal(r.json().code, 'NOT_ALLOWLISTED')
})

for (const [label, contentType, delimiter] of [
  ['a space after =', 'multipart/form-data; boundary= abc', '-- abc'],
  ['a tab after =', 'multipart/form-data; boundary=\tabc', '--\tabc'],
  ['a space before =', 'multipart/form-data; boundary =abc', '--abc'],
  ['a quoted value after a space', 'multipart/form-data; boundary= "abc"', '--abc']
] as const) {
  test(`boundary with ${label}: refused buffered and streamed, nothing forwarded`, async t => {
    const g = await startTestGate(t)
    const body = form(delimiter, { tag_name: 'v9', job_token: TOKENS.tools })
    const buffered = await send(g.url, 'POST', RELEASES, { 'content-type': contentType }, body)
    assert.equal(buffered.status, 400, buffered.text)
    assert.equal(buffered.json().code, 'MULTIPART_BAD_BOUNDARY')
    const streamed = await sendChunked(g.url, RELEASES, { 'content-type': contentType }, [body])
    assert.equal(streamed.status, 400, streamed.body)
    // The header's override is not decided on either: the body's `_method` may say otherwise.
    const override = await send(g.url, 'POST', PACKAGE, { 'content-type': contentType, 'job-token': TOKENS.app, 'x-http-method-override': 'GET' }, form(delimiter, { _method: 'DELETE' }))
    assert.equal(override.status, 400, override.text)
    assert.equal(g.seen.length, 0)
  })
}

for (const [label, contentType, body] of [
  ['boundary\\xA0=abc (Rack finds no boundary: a form)', 'multipart/form-data; boundary\xa0=abc', Buffer.from(`tag_name=v9&job_token=${TOKENS.tools}`)],
  ['boundary=\\xA0abc (Rack keeps the byte)', 'multipart/form-data; boundary=\xa0abc', form('--\xa0abc', { job_token: TOKENS.tools })],
  [';\\xA0boundary=abc', 'multipart/form-data;\xa0boundary=abc', form('--abc', { job_token: TOKENS.tools })]
] as const) {
  test(`${label}: refused, nothing forwarded`, async t => {
    const g = await startTestGate(t)
    const r = await latin1Request(g.url, ['POST /api/v4/projects/200/releases HTTP/1.1', `Content-Type: ${contentType}`], body)
    assert.deepEqual(r, { status: 400, code: 'MULTIPART_BAD_BOUNDARY' })
    assert.equal(g.seen.length, 0)
  })
}

test('a form type followed by a no-break space is no form to Rack: no `_method` read from its body', async t => {
  const g = await startTestGate(t)
  // Rack's media type is "application/x-www-form-urlencoded\xA0": its #POST reads nothing, so
  // the header's override (GET) is what Rack routes, and the gate decides GET too.
  const r = await latin1Request(g.url, ['POST /api/v4/projects/200/packages/5 HTTP/1.1', 'Content-Type: application/x-www-form-urlencoded\xa0', `Job-Token: ${TOKENS.app}`, 'X-HTTP-Method-Override: GET'], Buffer.from('_method=DELETE'))
  assert.equal(r.status, 200)
  assert.equal(g.seen.length, 1)
  assert.equal(g.seen[0]!.method, 'POST')
})

const REMOVE_APP = 'mutation { x: ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app", direction: INBOUND}) { errors } }'

test('/api/graphql: an allowlist mutation behind a boundary the gate cannot read is refused, never forwarded', async t => {
  const g = await adminGate(t)
  // Rack: no boundary, so the body is a form whose `query` (one letter escaped) is the mutation.
  const asForm = await latin1Request(g.url, ['POST /api/graphql HTTP/1.1', 'Content-Type: multipart/form-data; boundary\xa0=b', `Private-Token: ${ADMIN}`],
    Buffer.from(`query=${encodeURIComponent(REMOVE_APP).replace('ciJob', '%63iJob')}`))
  assert.deepEqual(asForm, { status: 400, code: 'GRAPHQL_AMBIGUOUS_REQUEST' })
  // Rack: the boundary " b"; Apollo's `operations` holds the mutation behind a JSON escape.
  const operations = JSON.stringify({ query: REMOVE_APP }).replace('ciJob', '\\u0063iJob')
  const spaced = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'multipart/form-data; boundary= b', 'private-token': ADMIN },
    `-- b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n-- b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n-- b--\r\n`)
  assert.equal(spaced.status, 400, spaced.text)
  assert.equal(spaced.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  // Over the gate's 1 MiB read: decided from the headers.
  const large = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'multipart/form-data; boundary= b', 'private-token': ADMIN },
    Buffer.concat([Buffer.from('-- b\r\nContent-Disposition: form-data; name="0"; filename="a.bin"\r\n\r\n'), Buffer.alloc(1100 * 1024, 0x61), Buffer.from(`\r\n-- b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n-- b--\r\n`)]))
  assert.equal(large.status, 400, large.text)
  assert.equal(large.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST')
  assert.equal(g.seen.length, 0)
})
