// Finding: Workhorse reads the multipart bodies of its upload routes with Go's mime/multipart,
// whose NextPart() decodes a part sent with `Content-Transfer-Encoding: quoted-printable` and
// drops that header; the fields are then written again, decoded, for Rails. Rack and the gate
// read the bytes as sent. An `access_token` part holding a job token quoted-printable encoded
// (`glcbt=2D...`) was no job token to the gate, which forwarded the PyPI upload as a request
// without one; behind Workhorse, Rails read `access_token=glcbt-...` and GitLab authenticated
// the job, whose project is not on the target project's allowlist. Workhorse asks Rails to
// pre-authorize such an upload with the request's headers only, so the request carries a
// developer's personal access token there too; in Rails a job token in `access_token` outranks it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send, sendChunked } from '../helpers/http.ts'
import { multipartPieces } from '../helpers/multipart-body.ts'

const B = 'transfer-encoding-boundary'
// other/tools (300) is not on acme/lib's (200) allowlist; acme/platform/app (100) is the job's own project.
const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'
const APP_UPLOAD = '/api/v4/projects/100/packages/pypi'

const { part, end, type, bigFile } = multipartPieces(B)
/** Quoted-printable as Go's mime/quotedprintable reads it: `=2D` is `-`. */
const DEVELOPER = 'glpat-lib-developer-0000000000'
const users = { [DEVELOPER]: { id: 51, username: 'dev', access: { 200: 30 } } }
const qp = (token: string): string => token.replace(/-/g, '=2D').replace(/_/g, '=5F')

const SHAPES: ReadonlyArray<readonly [string, Buffer]> = [
  ['access_token, quoted-printable', part(['Content-Disposition: form-data; name="access_token"', 'Content-Transfer-Encoding: quoted-printable'], qp(TOKENS.tools))],
  ['bearer_token, the header in lower case', part(['Content-Disposition: form-data; name="bearer_token"', 'content-transfer-encoding: Quoted-Printable'], qp(TOKENS.tools))],
  ['token, the header value folded', part(['Content-Disposition: form-data; name="token"', 'Content-Transfer-Encoding:', ' quoted-printable'], qp(TOKENS.tools))],
  ['private_token, a soft line break', part(['Content-Disposition: form-data; name="private_token"', 'Content-Transfer-Encoding: quoted-printable'], `glcbt=\r\n${qp(TOKENS.tools.slice(5))}`)],
  ['job_token, base64', part(['Content-Disposition: form-data; name="job_token"', 'Content-Transfer-Encoding: base64'], Buffer.from(TOKENS.tools).toString('base64'))],
  ['_method, quoted-printable', part(['Content-Disposition: form-data; name="_method"', 'Content-Transfer-Encoding: quoted-printable'], '=44ELETE')]
]

for (const [name, encoded] of SHAPES) {
  test(`${name}: refused buffered, streamed and after a large file part; nothing reaches the upstream`, async t => {
    const g = await startTestGate(t, {}, { users })
    const small = Buffer.concat([part(['Content-Disposition: form-data; name="name"'], 'pkg'), encoded, end])
    const buffered = await send(g.url, 'POST', LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, small)
    assert.equal(buffered.status, 400, `buffered: ${buffered.text}`)
    assert.equal(buffered.json().code, 'MULTIPART_TRANSFER_ENCODING')
    assert.match(String(buffered.json().message), /^400 Bad request/)

    const streamed = await sendChunked(g.url, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, [small])
    assert.ok(streamed.status === 400 || streamed.status === 401 || streamed.status === 403, `streamed: ${streamed.status} ${streamed.body}`)

    const afterFile = await sendChunked(g.url, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, [bigFile, encoded, end])
    assert.ok(afterFile.status === 400 || afterFile.status === 401 || afterFile.status === 403, `after a file part: ${afterFile.status} ${afterFile.body}`)
    assert.equal(g.seen.length, 0, 'no upload reached the upstream')
  })
}

test('a credential part beside the same header token, with an identity transfer encoding, passes', async t => {
  const g = await startTestGate(t)
  for (const encoding of ['7bit', '8bit', 'binary', 'BINARY']) {
    const body = Buffer.concat([part(['Content-Disposition: form-data; name="job_token"', `Content-Transfer-Encoding: ${encoding}`], TOKENS.app), end])
    const answer = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body)
    assert.equal(answer.status, 200, `${encoding}: ${answer.text}`)
  }
  assert.equal(g.seen.length, 4)
})

test('file parts and other fields keep any transfer encoding', async t => {
  const g = await startTestGate(t)
  const body = Buffer.concat([
    part(['Content-Disposition: form-data; name="name"', 'Content-Transfer-Encoding: quoted-printable'], 'pkg=2Dname'),
    part(['Content-Disposition: form-data; name="content"; filename="pkg-1.0.tar.gz"', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64'], 'YWJj'),
    end
  ])
  const buffered = await send(g.url, 'POST', APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, body)
  assert.equal(buffered.status, 200, buffered.text)
  const streamed = await sendChunked(g.url, APP_UPLOAD, { ...type, 'job-token': TOKENS.app }, [bigFile, body])
  assert.equal(streamed.status, 200, `${streamed.status} ${streamed.body}`)
  assert.equal(g.seen.length, 2)
})

test('forward-auth with the body sent: refused the same way', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent' }, { users })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const body = Buffer.concat([SHAPES[0]![1], end])
  const answer = await send(auth, 'POST', LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, body)
  assert.equal(answer.status, 400, answer.text)
  assert.equal(answer.json().code, 'MULTIPART_TRANSFER_ENCODING')
})
