// Finding: Workhorse names a multipart part of its upload routes with Go's mime.ParseMediaType,
// which takes any Unicode white space (a no-break space, U+00A0 sent as the bytes C2 A0, and
// U+0085, U+2000-U+200A, U+3000...) around a parameter's '=' and after its value, and writes the
// Content-Disposition again for Rails in its own form (`form-data; name=private_token`). The gate
// read parameters with ASCII white space only, as Rack does: `name\u00a0=\u00a0private_token` named
// nothing to it. A Developer's personal access token in such a part of a PyPI upload passed a
// Maintainer-only package rule on the Maintainer's header token, while Rails behind Workhorse read
// the body's `private_token` (ahead of the headers) and acted as the Developer. A `_method` part so
// spelled was no override to the gate. Go's reading of each part's name is now one of the gate's.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, adminGate, USERS } from '../helpers/admin-gate.ts'
import { rawRequest, sendChunked, send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
/** The job's own project: its token may upload there. */
const APP_UPLOAD = '/api/v4/projects/100/packages/pypi'
const B = 'go-spaces-boundary'
const type = { 'content-type': `multipart/form-data; boundary=${B}` }

/** The parameter as Go reads it and Rack does not: bytes, not characters (C2 A0 is one no-break space). */
const SPELLINGS: ReadonlyArray<readonly [string, string]> = [
  ['no-break spaces around =', 'name\xc2\xa0=\xc2\xa0private_token'],
  ['a no-break space before =', 'name\xc2\xa0=private_token'],
  ['a no-break space after the value', 'name=private_token\xc2\xa0'],
  ['an ideographic space before =', 'name\xe3\x80\x80=private_token'],
  ['a next-line (U+0085) after =', 'NAME=\xc2\x85private_token'],
  ['an en quad before a quoted value', 'name=\xe2\x80\x80"private_token"']
]

function body (param: string, value: string): Buffer {
  return Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n` +
    `--${B}\r\nContent-Disposition: form-data; ${param}\r\n\r\n${value}\r\n--${B}--\r\n`, 'latin1')
}

test('a Developer\'s token under a name only Go reads is refused by a Maintainer-only rule, buffered and streamed', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { pypi: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  for (const [label, param] of SPELLINGS) {
    const upload = body(param, USERS.developer)
    const buffered = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, upload)
    assert.equal(buffered.status, 403, `${label}: ${buffered.text}`)
    assert.equal(buffered.json().code, 'PACKAGE_MAINTAINER_ONLY', label)
    const streamed = await sendChunked(g.url, PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, [upload])
    assert.ok(streamed.status === 401 || streamed.status === 403, `${label} streamed: ${streamed.status} ${streamed.body}`)
  }
  assert.equal(g.seen.length, before, 'no upload reached the upstream')
  // Control: the Maintainer's own upload passes.
  const clean = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, body('name="version"', '1.0'))
  assert.equal(clean.status, 200, clean.text)
})

test('a `_method` part named so only Go reads it is no route the gate can decide: refused, nothing forwarded', async t => {
  const g = await startTestGate(t)
  for (const [label, param] of SPELLINGS) {
    const spelled = param.replace('private_token', '_method')
    const r = await rawRequest(Number(new URL(g.url).port), [`POST ${APP_UPLOAD} HTTP/1.1`, `Content-Type: multipart/form-data; boundary=${B}`, `Job-Token: ${TOKENS.app}`], body(spelled, 'DELETE'))
    assert.equal(r.status, 400, `${label}: ${r.body}`)
    assert.equal((JSON.parse(r.body) as { code?: unknown }).code, 'METHOD_OVERRIDE_AMBIGUOUS', label)
  }
  assert.equal(g.seen.length, 0)
  const clean = await rawRequest(Number(new URL(g.url).port), [`POST ${APP_UPLOAD} HTTP/1.1`, `Content-Type: multipart/form-data; boundary=${B}`, `Job-Token: ${TOKENS.app}`], body('name="version"', '1.0'))
  assert.equal(clean.status, 200, clean.body)
})
