// Finding: Rack takes a multipart part's name from Content-ID when Content-Disposition has no
// name, and the gate read names only from `name=`; it also took a part for a file when
// `filename=` appeared anywhere in the part's headers, so a decoy `X-Note: filename=a` made it
// skip the value. A `Content-ID: job_token` part carrying the token of a project that is not
// allowlisted went through unchecked, buffered or streamed, after a large file part too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send, sendChunked } from '../helpers/http.ts'
import { multipartPieces } from '../helpers/multipart-body.ts'

const B = 'content-id-boundary'
// other/tools (300) is not on acme/lib's (200) allowlist; acme/platform/app (100) is the job's own project.
const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'

const { part, end, type, bigFile } = multipartPieces(B)

const SHAPES: ReadonlyArray<readonly [string, Buffer]> = [
  ['Content-ID names the part', part(['Content-Disposition: form-data', 'Content-ID: job_token'], TOKENS.tools)],
  ['Content-ID with a decoy filename header', part(['Content-Disposition: form-data', 'X-Note: filename=a.txt', 'Content-ID: job_token'], TOKENS.tools)],
  ['name= with a decoy filename header', part(['Content-Disposition: form-data; name="token"', 'X-Note: filename="a.txt"'], TOKENS.tools)],
  ['Content-Type names the part when nothing else does', part(['Content-Disposition: form-data', 'Content-Type: job_token'], TOKENS.tools)]
]

for (const [name, credential] of SHAPES) {
  test(`${name}: refused buffered, streamed and after a large file part; nothing reaches the upstream`, async t => {
    const g = await startTestGate(t)
    const small = Buffer.concat([part(['Content-Disposition: form-data; name="name"'], 'pkg'), credential, end])
    const buffered = await send(g.url, 'POST', LIB_UPLOAD, type, small)
    assert.equal(buffered.status, 403, `buffered: ${buffered.text}`)
    assert.equal(buffered.json().code, 'NOT_ALLOWLISTED')

    const streamed = await sendChunked(g.url, LIB_UPLOAD, type, [small])
    assert.ok(streamed.status === 401 || streamed.status === 403, `streamed: ${streamed.status} ${streamed.body}`)

    const afterFile = await sendChunked(g.url, LIB_UPLOAD, type, [bigFile, credential, end])
    assert.ok(afterFile.status === 401 || afterFile.status === 403, `after a file part: ${afterFile.status} ${afterFile.body}`)
    assert.equal(g.seen.length, 0, 'no upload reached the upstream')
  })
}

test('a real file part with a Content-ID and the job\'s own header token still passes', async t => {
  const g = await startTestGate(t)
  const body = Buffer.concat([part(['Content-Disposition: form-data; name="content"; filename="pkg-1.0.tar.gz"', 'Content-ID: <file-1@example>'], 'data'), end])
  const answer = await send(g.url, 'POST', '/api/v4/projects/100/packages/pypi', { ...type, 'job-token': TOKENS.app }, body)
  assert.equal(answer.status, 200, answer.text)
  assert.equal(g.seen.length, 1)
})
