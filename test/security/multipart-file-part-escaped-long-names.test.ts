// Rack 3 bounds a Content-Disposition value at 1,536 bytes, and Workhorse writes a file part's
// fields `<name>.<key>` with Go's WriteField, each `"` and `\` of the name escaped with a `\`: the
// line Rack 3 bounds holds one byte more for each. The guard took a name of at most 1,493 bytes
// and no CR, LF or `; name=` to be read as written by every reading of every field, without
// reading them; a name of 1,022 bytes, `Content-ID: job_token[` and 1,000 quotes, is 2,022 bytes
// written, past Rack 3's bound, which names its `.name` field `job_token[\"\"...` by the
// Content-ID inside it: the filename nested under `job_token`. The readings the guard skipped say
// so, and the part was forwarded. The bound is now taken on the name as Go writes it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { send } from '../helpers/http.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { multipartPieces, refusedWholeAndStreamed } from '../helpers/multipart-body.ts'
import { prng } from '../helpers/prng.ts'
import { writtenFieldReadAsIs, writtenFieldReadings } from '../../src/identity/multipart.ts'

const KEYS = ['name', 'path', 'remote_url', 'remote_id', 'size', 'upload_duration', 'md5', 'sha1', 'sha256', 'sha512', 'gitlab-workhorse-upload']
const B = 'workhorse-escaped-file-part-names-boundary'
const LIB_UPLOAD = '/api/v4/projects/200/packages/pypi'
const DEVELOPER = 'glpat-lib-developer-0000000000'
const users = { [DEVELOPER]: { id: 51, username: 'dev', access: { 200: 30 } } }
const { part, end, type } = multipartPieces(B)
const escaped = (name: string): string => name.replace(/["\\]/g, '\\$&')

const upload = (name: string): Buffer => Buffer.concat([
  part(['Content-Disposition: form-data; name="name"'], 'pkg'),
  part([`Content-Disposition: form-data; name="${escaped(name)}"; filename="${TOKENS.tools}"`, 'Content-Type: application/octet-stream'], ''),
  end
])

test('a name the shortcut takes is read as written, for names near Rack 3\'s bound holding quotes and backslashes', () => {
  const random = prng(20261204)
  const pieces = ['x', '"', '\\', ' ', ';', 'Content-ID: job_token[', 'Content-Type: a[']
  let taken = 0
  for (let i = 0; i < 600; i++) {
    // Names from 1,400 to 1,520 bytes, a few to many of them escaped.
    const length = 1400 + Math.floor(random() * 120)
    const escapes = Math.floor(random() * (i % 3 === 0 ? 4 : 80))
    let name = ''
    while (name.length < length) name += random() * length < escapes ? pieces[1 + Math.floor(random() * 2)] : pieces[Math.floor(random() * pieces.length)]
    const asWritten = writtenFieldReadAsIs(name)
    for (const key of KEYS) {
      const written = `${name}.${key}`
      if (asWritten) assert.deepEqual(writtenFieldReadings(written).filter(read => read !== written), [], `${name.length} bytes, ${escaped(name).length} written, .${key}`)
    }
    if (asWritten) taken++
  }
  assert.ok(taken > 20, `${taken} names taken`)
  // At the bound, as written: 1,493 bytes with no escape, one byte less for each escape.
  assert.equal(writtenFieldReadAsIs('x'.repeat(1493)), true)
  assert.equal(writtenFieldReadAsIs('"' + 'x'.repeat(1491)), true)
  assert.equal(writtenFieldReadAsIs('"' + 'x'.repeat(1492)), false)
  assert.equal(writtenFieldReadAsIs('\\'.repeat(746)), true)
  assert.equal(writtenFieldReadAsIs('\\'.repeat(747)), false)
})

test('a file part whose name passes Rack 3\'s bound once escaped is refused, buffered and streamed; nothing reaches the upstream', async t => {
  const name = `Content-ID: job_token[${'"'.repeat(1000)}`
  assert.ok(name.length <= 1493 && escaped(name).length > 1493)
  assert.ok(writtenFieldReadings(`${name}.name`).some(read => read.startsWith('job_token[')))
  const g = await startTestGate(t, {}, { users })
  const body = upload(name)
  await refusedWholeAndStreamed(g, LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, body, 'MULTIPART_PART_NAME_AMBIGUOUS')
})

test('a name with quotes within the bound once escaped is forwarded', async t => {
  const g = await startTestGate(t, {}, { users })
  const res = await send(g.url, 'POST', LIB_UPLOAD, { ...type, 'private-token': DEVELOPER }, upload(`a"b\\c${'x'.repeat(1400)}`))
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.length, 1)
})
