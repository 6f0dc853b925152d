// Workhorse stores each file part of an upload and writes, in its place, fields named
// `<name>.path`, `<name>.name` (the file's base name), `<name>.size`... with Go's
// multipart.Writer.WriteField (rewrite.go, handleFilePart), whose `form-data; name="..."` escapes
// only `"` and `\`. The name is Go's mime.ParseMediaType reading, RFC 2231 escapes decoded, so
// `name*=utf-8''x%3B%20name%3Daccess_token%20` is written `name="x; name=access_token .name"`,
// which Rack 2.2 names `access_token` (the last `; name=` of the line), with the filename for its
// value; a CR LF CR LF and a Content-ID in the name end the header block early and name it too.
// The gate read the file's content under that name, not its filename: a job token of a project
// off the target's allowlist sent as the filename went unread beside a Developer's header token.
// (GitLab's upload middleware raises on such a field name before Rails acts on it today.) The
// gate now refuses a file part whose fields Rack would read under another name.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { send, sendChunked } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { multipartPieces } from '../helpers/multipart-body.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { requireRack } from '../rack/rack-available.ts'

const B = 'workhorse-file-fields-boundary'
// other/tools (300) is not on acme/lib's (200) allowlist.
const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'
const DEVELOPER = 'glpat-lib-developer-0000000000'
const users = { [DEVELOPER]: { id: 51, username: 'dev', access: { 200: 30 } } }
const { part, end, type, bigFile } = multipartPieces(B)

/** File parts whose name Go decodes to one Rack reads otherwise in the fields Workhorse writes. */
const NAMES: ReadonlyArray<readonly [string, string]> = [
  ['a `; name=` decoded from RFC 2231 escapes', "name*=utf-8''x%3B%20name%3Daccess_token%20"],
  ['RFC 2231 sections', "name*0*=utf-8''x%3B; name*1*=%20name%3Daccess%5Ftoken%09"],
  ['a `; name=` at the start', "name*=utf-8''%3Bname%3Daccess_token%20"],
  ['CR LF CR LF and a Content-ID', "name*=utf-8''x%0D%0AContent-ID%3A%20access_token%0D%0A%0D%0A"],
  ['a lone LF', "name*=utf-8''x%0A%3B%20name%3Daccess_token%20"]
]

const upload = (name: string): Buffer => Buffer.concat([
  part(['Content-Disposition: form-data; name="name"'], 'pkg'),
  part([`Content-Disposition: form-data; ${name}; filename="${TOKENS.tools}"`, 'Content-Type: application/octet-stream'], ''),
  end
])

test('Rails, reading the fields Workhorse writes for such a file part, finds the filename under another name', async t => {
  if (!requireTool(t, goUnavailable()) || !requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const readings = goMultipart(NAMES.map(([, name]) => ({ boundary: B, body: upload(name) })))
  for (const [i, [label]] of NAMES.entries()) {
    assert.equal(readings[i]!.error, undefined, label)
    const rails = await oracle.ask({ method: 'POST', target: LIB_UPLOAD, headers: [['Content-Type', type['content-type']]], body: readings[i]!.rewritten })
    // After CR LF CR LF the value starts with the rest of the written line: a name, but no token.
    const read = rails.creds.some(([where, value]) => where === 'body:access_token' && (value === TOKENS.tools || (label.startsWith('CR LF') && value.endsWith(TOKENS.tools))))
    assert.ok(read, `${label}: Rack read ${JSON.stringify(rails.creds)}`)
  }
  // A plain file part's fields are read as written.
  const plain = goMultipart([{ boundary: B, body: upload('name="content"') }])[0]!
  const rails = await oracle.ask({ method: 'POST', target: LIB_UPLOAD, headers: [['Content-Type', type['content-type']]], body: plain.rewritten, params: true })
  assert.ok(rails.post !== undefined && 'params' in rails.post && rails.post.params['content.name'] === TOKENS.tools, JSON.stringify(rails.post))
})

for (const [label, name] of NAMES) {
  test(`a file part named with ${label}: refused buffered, streamed and after a large file part; nothing reaches the upstream`, async t => {
    const g = await startTestGate(t, {}, { users })
    const body = upload(name)
    const buffered = await send(g.url, 'POST', LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, body)
    assert.equal(buffered.status, 400, `buffered: ${buffered.text}`)
    assert.equal(buffered.json().code, 'MULTIPART_PART_NAME_AMBIGUOUS')
    assert.match(String(buffered.json().message), /^400 Bad request/)

    const streamed = await sendChunked(g.url, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, [body])
    assert.equal(streamed.status, 400, `streamed: ${streamed.status} ${streamed.body}`)

    const afterFile = await sendChunked(g.url, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, [bigFile, body.subarray(0, body.length - end.length)])
    assert.ok(afterFile.status >= 400, `after a file part: ${afterFile.status} ${afterFile.body}`)
    assert.equal(g.seen.length, 0, 'no upload reached the upstream')
  })
}

test('file parts under names Rack reads as written pass, escapes and brackets included', async t => {
  const g = await startTestGate(t, {}, { users })
  for (const name of ['name="content"', 'name="files[]"', 'name="a\\"b"', "name*=utf-8''caf%C3%A9", 'name="x;y"', 'name="c:\\\\d"']) {
    const body = Buffer.concat([part([`Content-Disposition: form-data; ${name}; filename="pkg-1.0.tar.gz"`], 'abc'), end])
    const answer = await send(g.url, 'POST', LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, body)
    assert.equal(answer.status, 200, `${name}: ${answer.text}`)
  }
  assert.equal(g.seen.length, 6)
})
