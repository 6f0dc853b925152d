// Finding: Go's mime.ParseMediaType takes a Content-Disposition type with a subtype
// (`form-data/x`), and Workhorse writes it again with mime.FormatMediaType as both tokens. The
// gate's port of FormatMediaType took a type without '/' only and answered '' for one with it, so
// `form-data/x; name=version; z*=utf-8''a%3Bname%3Dprivate_token` was `version` to the gate while
// Workhorse handed Rails `form-data/x; name=version; z="a;name=private_token"`, which Rack 2.2
// names `private_token`. The gate now writes the line as Go does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, adminGate, USERS } from '../helpers/admin-gate.ts'
import { sendChunked, send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { goFormatMediaType } from '../../src/identity/go-mime.ts'

const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
const APP_UPLOAD = '/api/v4/projects/100/packages/pypi'
const B = 'go-subtype-boundary'
const type = { 'content-type': `multipart/form-data; boundary=${B}` }
const SPELLINGS = [
  "form-data/x; name=version; z*=utf-8''a%3Bname%3Dprivate_token",
  'Attachment/Y ; name=version; z="a;name\\=private_token"'
]

function body (disposition: string, value: string): Buffer {
  return Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n` +
    `--${B}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n--${B}--\r\n`, 'latin1')
}

test('FormatMediaType writes a type with a subtype as Go does', () => {
  assert.equal(goFormatMediaType('form-data/x', new Map([['name', 'a'], ['z', 'b;c']])), 'form-data/x; name=a; z="b;c"')
  assert.equal(goFormatMediaType('form-data/', new Map([['name', 'a']])), '')
  assert.equal(goFormatMediaType('a/b/c', new Map([['name', 'a']])), '')
})

test('a Developer\'s token hidden behind a disposition type with a subtype is refused by a Maintainer-only rule', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { pypi: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  for (const disposition of SPELLINGS) {
    const upload = body(disposition, USERS.developer)
    const buffered = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, upload)
    assert.equal(buffered.status, 403, `${disposition}: ${buffered.text}`)
    assert.equal(buffered.json().code, 'PACKAGE_MAINTAINER_ONLY', disposition)
    const streamed = await sendChunked(g.url, PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, [upload])
    assert.ok(streamed.status === 401 || streamed.status === 403, `${disposition} streamed: ${streamed.status} ${streamed.body}`)
  }
  assert.equal(g.seen.length, before, 'no upload reached the upstream')
  const clean = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, body("form-data/x; name=version; z*=utf-8''a%3Bb", '1.0'))
  assert.equal(clean.status, 200, clean.text)
})

test('a `_method` hidden behind a disposition type with a subtype is ambiguous: refused, nothing forwarded', async t => {
  const g = await startTestGate(t)
  for (const disposition of SPELLINGS) {
    const r = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body(disposition.replace('private_token', '_method'), 'DELETE'))
    assert.equal(r.status, 400, `${disposition}: ${r.text}`)
    assert.equal(r.json().code, 'METHOD_OVERRIDE_AMBIGUOUS', disposition)
  }
  assert.equal(g.seen.length, 0)
})
