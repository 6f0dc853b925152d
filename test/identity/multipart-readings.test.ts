// How a multipart part is read, where Rack 3 and Go differ from Rack 2.2 (the Rack differential
// test, test/rack/, checks Rack 2.2 itself): which part is a file, which names a part has, and
// when a `_method` part is read alike by every parser.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import fc from 'fast-check'
import { formMethodParam } from '../../src/identity/body-scan.ts'
import { createMultipartGuard, isFilePart, multipartHeaderNames, rack2ContentTypes, rack3OldDisposition, scanMultipart } from '../../src/identity/multipart.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { doubtfulPartNames, rackMultipartFields } from '../../src/identity/rack-multipart.ts'

const lines = (...l: string[]): string => l.map(x => `${x}\r\n`).join('')

test('a part is a file only when Rack 2 and Rack 3 both find a filename in its Content-Disposition', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['filename=', lines('Content-Disposition: form-data; name="f"; filename="a.txt"'), true],
    ["filename*= (RFC 5987)", lines("Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''a.txt"), true],
    ['an empty filename: no file chosen, no value either', lines('Content-Disposition: form-data; name="f"; filename=""'), true],
    ["filename*= in another charset (Go drops it, and Workhorse hands Rails a field)", lines("Content-Disposition: form-data; name=\"f\"; filename*=iso-8859-1''a.txt"), false],
    ['a filename= in another header (Rack 2 scans every header for it, Rack 3 does not)', lines('X-Note: a; filename="b"', 'Content-Disposition: form-data; name="f"'), false],
    ['a filename= in X-Content-Disposition', lines('X-Content-Disposition: form-data; filename="b"'), false],
    ['a filename= on a folded line (Rack 3.0 and 3.1 then read no Content-Disposition)', lines('Content-Disposition: form-data; name="f"', '\t; filename="a"'), false],
    ['a Content-Type does not make a file', lines('Content-Disposition: form-data; name="f"', 'Content-Type: application/octet-stream'), false],
    ['a Content-Disposition over Rack 3\'s 1536 bytes (Rack 3 then names the part from Content-ID)', lines(`Content-Disposition: form-data; name="f"; x="${'a'.repeat(1600)}"; filename="a"`), false],
    ['FILENAME= (Rack 2 looks the parameter up as filename)', lines('Content-Disposition: form-data; FILENAME="a"'), false]
  ]
  for (const [name, head, file] of cases) {
    await t.test(name, () => { assert.equal(isFilePart(head), file) })
  }
})

test('the names a part has: every parser\'s reading of every header that can name it', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['Content-ID (Rack, when there is no name)', lines('Content-ID: job_token'), 'job_token'],
    ['Content-ID on a folded line (Rack 2 skips white space and line ends)', lines('Content-ID:', ' job_token'), 'job_token'],
    ['Content-Type (Rack names a part "#{content_type}[]" without a name)', lines('Content-Type: job_token'), 'job_token'],
    ['RFC 2231 continuations (Go joins name*0, name*1)', lines('Content-Disposition: form-data; name*0="job_"; name*1="token"'), 'job_token'],
    ['RFC 5987 name* (Go decodes it)', lines("Content-Disposition: form-data; name*=utf-8''job%5Ftoken"), 'job_token'],
    ['a backslash escape in a quoted name (Rack 3 and Go unescape)', lines('Content-Disposition: form-data; name="job\\_token"'), 'job_token'],
    ['a name= after an unclosed quoted value (Rack 2 takes the last name= it can match)', lines('Content-Disposition: form-data; name="x\\"; name=job_token'), 'job_token'],
    ['a bare name ends where Rack 2 ends a token', lines('Content-Disposition: form-data; name=job_token(x'), 'job_token'],
    ['name = with spaces (Go)', lines('Content-Disposition: form-data; name = "job_token"'), 'job_token']
  ]
  for (const [name, head, expected] of cases) {
    await t.test(name, () => { assert.ok(multipartHeaderNames(head).includes(expected), JSON.stringify(multipartHeaderNames(head))) })
  }
  await t.test('filename= is no name=', () => {
    assert.ok(!multipartHeaderNames(lines('Content-Disposition: form-data; filename="job_token"')).includes('job_token'))
  })
})

const B = 'XyZ'
const part = (head: string, value: string): string => `--${B}\r\n${head}\r\n${value}\r\n`
const METHOD = lines('Content-Disposition: form-data; name="_method"')

test('`_method` in a multipart body: read only when every parser frames and names the part alike', async (t) => {
  const cases: Array<[string, string, ReturnType<typeof scanMultipart>['methodParam']]> = [
    ['a plain form', part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'present', value: 'DELETE' }],
    ['no _method', part(lines('Content-Disposition: form-data; name="ref"'), 'main') + `--${B}--\r\n`, { kind: 'absent' }],
    ['twice alike', part(METHOD, 'put') + part(METHOD, 'put') + `--${B}--\r\n`, { kind: 'present', value: 'put' }],
    ['twice differently', part(METHOD, 'PUT') + part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['after a preamble', 'preamble\r\n' + part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['without the closing delimiter (Rack raises and reads the header)', part(METHOD, 'DELETE'), { kind: 'uncertain' }],
    ['a file named _method', part(lines('Content-Disposition: form-data; name="_method"; filename="m"'), 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['named by Content-ID', part(lines('Content-ID: _method'), 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['[_method] (Rack 2 reads _method, Rack 3 does not)', part(lines('Content-Disposition: form-data; name="[_method]"'), 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['LF-only lines in another part (Go and Rack frame it apart)', `--${B}\r\nContent-Disposition: form-data; name="a"\n\nx\r\n` + part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['a part after the closing delimiter', `--${B}--\r\n` + part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    // Found by the Rack differential: Rack 2 ends the first value at the delimiter, empty, skips
    // two bytes for the CRLF it lacked and every line to the next delimiter line: no `_method`.
    ['a delimiter right after a header block, without the value\'s CRLF', `--${B}\r\n` + lines('Content-Disposition: form-data; name="a"') + '\r\n' + part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'uncertain' }],
    ['an empty value with its CRLF', part(lines('Content-Disposition: form-data; name="a"'), '') + part(METHOD, 'DELETE') + `--${B}--\r\n`, { kind: 'present', value: 'DELETE' }]
  ]
  for (const [name, body, expected] of cases) {
    await t.test(name, () => { assert.deepEqual(scanMultipart(Buffer.from(body, 'latin1'), B).methodParam, expected) })
  }
})

test('`_method` in a form body, as Rack::Request#POST reads it', async (t) => {
  const cases: Array<[string, string, ReturnType<typeof formMethodParam>]> = [
    ['plain', 'a=1&_method=delete', { kind: 'present', value: 'delete' }],
    ['the last one wins', '_method=put&_method=delete', { kind: 'present', value: 'delete' }],
    ['encoded name', '%5Fmethod=PATCH', { kind: 'present', value: 'PATCH' }],
    ['spaces after & are skipped', 'a=1&  _method=PUT', { kind: 'present', value: 'PUT' }],
    ['UTF-8 value', '_method=l%C4%B1nk', { kind: 'present', value: 'lınk' }],
    ['a name without = is nil (the header decides)', '_method', { kind: 'absent' }],
    ['after ;, inside a value for Rack', 'a=1;_method=DELETE', { kind: 'absent' }],
    ['a bad escape: Rack raises, the header decides', '_method=DELETE&x=%zz', { kind: 'absent' }],
    ['nested names could raise on a conflict', '_method=DELETE&a=1&a[b]=2', { kind: 'uncertain' }],
    ['[_method]', '[_method]=DELETE', { kind: 'uncertain' }],
    ['none', 'job_token=x&ref=main', { kind: 'absent' }]
  ]
  for (const [name, body, expected] of cases) {
    await t.test(name, () => { assert.deepEqual(formMethodParam(Buffer.from(body, 'latin1')), expected) })
  }
})

test('the guard refuses a `_method` part before the delimiter after it', async () => {
  const body = Buffer.from(part(lines('Content-Disposition: form-data; name="file"; filename="a"'), 'x'.repeat(100_000)) + part(METHOD, 'DELETE') + `--${B}--\r\n`)
  const received: Buffer[] = []
  const sink = new Writable({ write (chunk: Buffer, _e, cb) { received.push(chunk); cb() } })
  const chunks = Array.from({ length: Math.ceil(body.length / 997) }, (_, i) => body.subarray(i * 997, (i + 1) * 997))
  await assert.rejects(pipeline(Readable.from(chunks), createMultipartGuard({ boundary: B, refuseMethodOverride: true }), sink),
    (err: unknown) => err instanceof IdentityError && err.code === 'METHOD_OVERRIDE_NOT_INSPECTABLE')
  const forwarded = Buffer.concat(received)
  assert.ok(forwarded.length > 90_000, 'the file part streamed')
  assert.ok(forwarded.length <= body.lastIndexOf(`--${B}`), 'the delimiter after the _method part was held')
  // Without the option the same body passes whole.
  const all: Buffer[] = []
  await pipeline(Readable.from(chunks), createMultipartGuard({ boundary: B }), new Writable({ write (chunk: Buffer, _e, cb) { all.push(chunk); cb() } }))
  assert.ok(Buffer.concat(all).equals(body))
})

test('a long token after Content-Disposition is read in linear time (found by fuzzing: 8 KB took 100 ms)', () => {
  const head = 'Content-Disposition: form-data' + 'glcbt-' + 'a'.repeat(64_000) + '\r\n'
  const started = performance.now()
  assert.equal(isFilePart(head), false)
  assert.deepEqual(multipartHeaderNames(head), [])
  // A hang detector with a wide margin: the quadratic reading took seconds at this length.
  assert.ok(performance.now() - started < 1000, `${(performance.now() - started).toFixed(0)} ms`)
})

test('Rack\'s Content-Type and Rack 3.0\'s Content-Disposition expressions, read line by line, find what the expressions find', () => {
  // The expressions as Rack writes them (rack/multipart.rb, Rack 3.0 parser.rb), the reference.
  const contentType = /Content-Type: ([^\n]*)\r\n/gi
  const disposition = /Content-Disposition:([^\n]*)(?=\r\n(?:[^ \t\n\v\f\r]|$))/i
  const atom = fc.constantFrom('Content-Type: ', 'content-TYPE: ', 'Content-Type:', 'Content-Disposition:', 'CONTENT-DISPOSITION:', 'x', ' ', '\t', '\r', '\n', '\r\n', '; name=a', '\r\r\n', '\r\n ')
  fc.assert(fc.property(fc.array(atom, { maxLength: 24 }).map(a => a.join('')), (head) => {
    assert.deepEqual(rack2ContentTypes(head), [...head.matchAll(contentType)].map(m => m[1]), JSON.stringify(head))
    assert.deepEqual(rack2ContentTypes(head, 1), [...head.matchAll(contentType)].slice(0, 1).map(m => m[1]))
    assert.equal(rack3OldDisposition(head), disposition.exec(head)?.[1] ?? null, JSON.stringify(head))
  }), { numRuns: 5_000 })
  // Linear: 8,000 lines of repeated names (the expressions: quadratic).
  const lines = 'Content-Disposition:Content-Type: x'.repeat(400) + '\n'
  assert.equal(rack3OldDisposition(lines.repeat(20)), null)
})

test('a part whose value has no CRLF of its own before the next delimiter is doubtful, with the part Rack swallows after it', () => {
  const swallowed = `--${B}\r\n` + lines('Content-Disposition: form-data; name="a"') + '\r\n' + part(lines('Content-Disposition: form-data; name="query"'), '{ x }') + `--${B}--\r\n`
  assert.ok(doubtfulPartNames(Buffer.from(swallowed, 'latin1'), B).includes('a'))
  assert.deepEqual(rackMultipartFields(Buffer.from(swallowed, 'latin1'), B), [{ name: 'a', value: '' }], 'Rack 2 reads no query part')
  const plain = part(lines('Content-Disposition: form-data; name="a"'), '') + part(lines('Content-Disposition: form-data; name="query"'), '{ x }') + `--${B}--\r\n`
  assert.deepEqual(doubtfulPartNames(Buffer.from(plain, 'latin1'), B), [])
})
