// Workhorse writes, in place of a file part it stores, fields `<name>.name` (the filename),
// `<name>.path`... with Go's WriteField, one line each: `Content-Disposition: form-data;
// name="<name>.<key>"`. Rack 3 reads a Content-Disposition value of at most 1,536 bytes
// (CONTENT_DISPOSITION_MAX_BYTES); past it, it names the part by the first `Content-ID:` anywhere
// in the block (its expression is not anchored), else by `"#{Content-Type}[]"`. A file part named
// 1,600 bytes of padding then `Content-ID: job_token[` is written `... Content-ID:
// job_token[.name`, which Rack 3 reads as `job_token[.name"`: the filename nested under
// `job_token`, where the gate read only the part's content. The gate took Rack 3 to read no name
// there at all, and a name without a quote, a backslash, a `;`, a CR or an LF as written whatever
// its length. Such a file part is now refused as one whose fields Rack reads under another name,
// as `access_token[` is (multipart-workhorse-nested-file-fields.test.ts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { multipartPieces, refusedWholeAndStreamed } from '../helpers/multipart-body.ts'
import { writtenFieldReadAsIs, writtenFieldReadings } from '../../src/identity/multipart.ts'

const B = 'workhorse-long-file-part-names-boundary'
const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'
const DEVELOPER = 'glpat-lib-developer-0000000000'
const users = { [DEVELOPER]: { id: 51, username: 'dev', access: { 200: 30 } } }
const { part, end, type } = multipartPieces(B)
const PADDING = 'x'.repeat(1600)

const upload = (name: string): Buffer => Buffer.concat([
  part(['Content-Disposition: form-data; name="name"'], 'pkg'),
  part([`Content-Disposition: form-data; name="${name}"; filename="${TOKENS.tools}"`, 'Content-Type: application/octet-stream'], ''),
  end
])

test('Rack 3 names a written field past its bound by a Content-ID or Content-Type inside the name, else text/plain[]', () => {
  assert.deepEqual(writtenFieldReadings(`${PADDING} Content-ID: job_token[.name`).slice(1), ['job_token[.name"', 'job_token[.name"'])
  assert.deepEqual(writtenFieldReadings(`${PADDING} Content-Type: private_token[.name`).slice(1), ['private_token[.name"[]', 'private_token[.name"[]'])
  assert.deepEqual(writtenFieldReadings(`${PADDING}.name`).slice(1), ['text/plain[]', 'text/plain[]'])
  // Within the bound, the name as written, every way.
  assert.deepEqual(writtenFieldReadings('x Content-ID: job_token[.name'), Array(3).fill('x Content-ID: job_token[.name'))
  for (const name of [`${PADDING} Content-ID: job_token[`, PADDING]) assert.equal(writtenFieldReadAsIs(name), false)
})

for (const [label, name] of [['a Content-ID', `${PADDING} Content-ID: job_token[`], ['a Content-Type', `${PADDING} Content-Type: access_token[`], ['nothing', PADDING]] as const) {
  test(`a file part whose name is past Rack 3's bound, holding ${label}: refused buffered and streamed; nothing reaches the upstream`, async t => {
    const g = await startTestGate(t, {}, { users })
    const body = upload(name)
    await refusedWholeAndStreamed(g, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, body, 'MULTIPART_PART_NAME_AMBIGUOUS')
  })
}

test('a file part whose name is within the bound is forwarded', async t => {
  const g = await startTestGate(t, {}, { users })
  const res = await send(g.url, 'POST', LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, upload('x'.repeat(1400)))
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.length, 1)
})
