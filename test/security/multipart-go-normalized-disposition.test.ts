// Finding: Workhorse writes each part's Content-Disposition again for Rails as Go reads it,
// mime.FormatMediaType of mime.ParseMediaType: parameters sorted by name, their values decoded
// (quoted-string escapes, RFC 2231 `z*=utf-8''...` and `z*0*=`/`z*1*=` sections) and quoted again.
// Rack 2.2 takes a part's name from the last `; name=` of that line, inside a quoted value too.
// `form-data; name=version; z*=utf-8''a%3Bname%3Dprivate_token` is named `version` by Go and by the
// gate; Workhorse hands Rails `form-data; name=version; z="a;name=private_token"`, which Rack names
// `private_token`. A Developer's personal access token in such a part of a PyPI upload passed a
// Maintainer-only package rule on the Maintainer's header token, while Rails read the body's
// `private_token` (ahead of the headers) and acted as the Developer. The gate now also reads a
// part's name from the Content-Disposition Workhorse writes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, adminGate, USERS } from '../helpers/admin-gate.ts'
import { sendChunked, send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
const APP_UPLOAD = '/api/v4/projects/100/packages/pypi'
const B = 'go-normalized-boundary'
const type = { 'content-type': `multipart/form-data; boundary=${B}` }

/** Dispositions Go names `version` and Workhorse writes again with `;name=private_token` in a value. */
const SPELLINGS: ReadonlyArray<readonly [string, string]> = [
  ['RFC 2231 percent escapes', "form-data; name=version; z*=utf-8''a%3Bname%3Dprivate_token"],
  ['a quoted-string escape', 'form-data; name=version; z="a;name\\=private_token"'],
  ['RFC 2231 sections', "form-data; name=version; z*0*=utf-8''a%3Bname; z*1*=%3Dprivate%5Ftoken"],
  ['a parameter name in capitals', "form-data; NAME=version; Zz*=UTF-8''%3b%20name%3dprivate_token"]
]

function body (disposition: string, value: string): Buffer {
  return Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n` +
    `--${B}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n--${B}--\r\n`, 'latin1')
}

test('a Developer\'s token under a name Rack reads only in Workhorse\'s Content-Disposition is refused by a Maintainer-only rule', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { pypi: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  for (const [label, disposition] of SPELLINGS) {
    const upload = body(disposition, USERS.developer)
    const buffered = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, upload)
    assert.equal(buffered.status, 403, `${label}: ${buffered.text}`)
    assert.equal(buffered.json().code, 'PACKAGE_MAINTAINER_ONLY', label)
    const streamed = await sendChunked(g.url, PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, [upload])
    assert.ok(streamed.status === 401 || streamed.status === 403, `${label} streamed: ${streamed.status} ${streamed.body}`)
  }
  assert.equal(g.seen.length, before, 'no upload reached the upstream')
  const clean = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, body("form-data; name=version; z*=utf-8''a%3Bb", '1.0'))
  assert.equal(clean.status, 200, clean.text)
})

test('a `_method` so hidden is ambiguous: refused, nothing forwarded', async t => {
  const g = await startTestGate(t)
  for (const [label, disposition] of SPELLINGS) {
    const r = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body(disposition.replace(/private(_|%5F)token/, '_method'), 'DELETE'))
    assert.equal(r.status, 400, `${label}: ${r.text}`)
    assert.equal(r.json().code, 'METHOD_OVERRIDE_AMBIGUOUS', label)
  }
  assert.equal(g.seen.length, 0)
})
