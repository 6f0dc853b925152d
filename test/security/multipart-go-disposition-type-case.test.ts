// Finding: Go's mime.ParseMediaType lowers the disposition type with strings.ToLower, which maps
// every rune of a non-ASCII string: U+212A (Kelvin sign) becomes `k` and U+0130 (İ) `i`. So
// `\u212A; name=version; z*=utf-8''a%3Bname%3Dprivate_token` (UTF-8) is a part of type `k` named
// `version` that Workhorse keeps and writes again for Rails as `k; name=version;
// z="a;name=private_token"`, a `private_token` part to Rack 2.2. The gate's port lowered ASCII
// letters only, found no type, and read nothing from Workhorse's line. It now lowers as Go does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, adminGate, USERS } from '../helpers/admin-gate.ts'
import { sendChunked, send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { goNormalizedDisposition } from '../../src/identity/go-mime.ts'

const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
const APP_UPLOAD = '/api/v4/projects/100/packages/pypi'
const B = 'go-type-case-boundary'
const type = { 'content-type': `multipart/form-data; boundary=${B}` }
/** As latin1 characters of their UTF-8 bytes, as the gate reads a header. */
const KELVIN = '\xe2\x84\xaa'
const DOTTED_I = '\xc4\xb0'
const SPELLINGS = [
  `${KELVIN}; name=version; z*=utf-8''a%3Bname%3Dprivate_token`,
  `${DOTTED_I}nline ; name=version; z="a;name\\=private_token"`,
  `form-data/${KELVIN}; name=version; z*=utf-8''a%3Bname%3Dprivate_token`
]

function body (disposition: string, value: string): Buffer {
  return Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n` +
    `--${B}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n--${B}--\r\n`, 'latin1')
}

test('the disposition type is lowered as Go lowers it', () => {
  assert.equal(goNormalizedDisposition(SPELLINGS[0]!), 'k; name=version; z="a;name=private_token"')
  assert.equal(goNormalizedDisposition(SPELLINGS[1]!), 'inline; name=version; z="a;name=private_token"')
  assert.equal(goNormalizedDisposition(SPELLINGS[2]!), 'form-data/k; name=version; z="a;name=private_token"')
  assert.equal(goNormalizedDisposition('\xc3\x89; name=version'), null)
})

test('a Developer\'s token behind a disposition type Go lowers to ASCII is refused by a Maintainer-only rule', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { pypi: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  for (const disposition of SPELLINGS) {
    const upload = body(disposition, USERS.developer)
    const buffered = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, upload)
    assert.equal(buffered.status, 403, `${JSON.stringify(disposition)}: ${buffered.text}`)
    assert.equal(buffered.json().code, 'PACKAGE_MAINTAINER_ONLY', disposition)
    const streamed = await sendChunked(g.url, PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, [upload])
    assert.ok(streamed.status === 401 || streamed.status === 403, `${JSON.stringify(disposition)} streamed: ${streamed.status} ${streamed.body}`)
  }
  assert.equal(g.seen.length, before, 'no upload reached the upstream')
  const clean = await send(g.url, 'POST', PYPI_UPLOAD, { ...type, 'private-token': USERS.maintainer }, body(`${KELVIN}; name=version; z*=utf-8''a%3Bb`, '1.0'))
  assert.equal(clean.status, 200, clean.text)
})

test('a `_method` behind a disposition type Go lowers to ASCII is ambiguous: refused, nothing forwarded', async t => {
  const g = await startTestGate(t)
  for (const disposition of SPELLINGS) {
    const r = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body(disposition.replace('private_token', '_method'), 'DELETE'))
    assert.equal(r.status, 400, `${JSON.stringify(disposition)}: ${r.text}`)
    assert.equal(r.json().code, 'METHOD_OVERRIDE_AMBIGUOUS', disposition)
  }
  assert.equal(g.seen.length, 0)
})
