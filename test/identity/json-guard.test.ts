// The streaming JSON guard (src/identity/json-guard.ts): the same credentials as the buffered
// scan whatever the chunking, escapes split anywhere, bounded memory on huge strings, and the
// refusal rules of the multipart guard.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { StringDecoder } from 'node:string_decoder'
import fc from 'fast-check'
import { jsonCredentials } from '../../src/identity/body-scan.ts'
import { createJsonGuard, JsonScanner, scanJson, type JsonGuardOptions } from '../../src/identity/json-guard.ts'
import type { Credential } from '../../src/identity/credentials.ts'
import { IdentityError } from '../../src/identity/types.ts'

const A = 'glcbt-64_aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'glcbt-64_bbbbbbbbbbbbbbbbbbbbbbbb'

/** Runs `body`, cut into `pieces`, through a guard: the bytes it let through, and its error code. */
async function guard (pieces: ReadonlyArray<string | Buffer>, options: JsonGuardOptions = {}): Promise<{ out: Buffer, code: string | null }> {
  const chunks: Buffer[] = []
  const sink = new Writable({ write (chunk: Buffer, _e, cb) { chunks.push(chunk); cb() } })
  let code: string | null = null
  try {
    await pipeline(Readable.from(pieces.map(p => Buffer.from(p))), createJsonGuard(options), sink)
  } catch (err) {
    assert.ok(err instanceof IdentityError, String(err))
    code = err.code
  }
  return { out: Buffer.concat(chunks), code }
}

/** Every cut of `text` into two pieces, as a list of piece lists (UTF-8 bytes cut anywhere). */
function everySplit (text: string): Buffer[][] {
  const bytes = Buffer.from(text)
  const out: Buffer[][] = []
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)])
  return out
}

function scanPieces (pieces: readonly string[]): Credential[] {
  const found: Credential[] = []
  const s = new JsonScanner(c => { found.push(c) })
  for (const p of pieces) s.write(p)
  s.end()
  return found
}

const view = (cs: readonly Credential[]): string[] => cs.map(c => `${c.where} ${c.jobToken ? 'job' : '-'} ${JSON.stringify(c.secret)}`).sort()

test('escapes, surrogate pairs and multi-byte characters split at every byte read the same', async () => {
  const body = `{"job\\u005ftoken": "${A}", "n\\u00e9": "caf\u00e9 \\ud83d\\ude00 \u{1f600} \\/\\"\\\\\\b\\f\\n\\r\\t", "token": -12.5e-1, "x": [true, false, null]}`
  const expected = view(jsonCredentials(Buffer.from(body)))
  assert.deepEqual(expected, ['body:job_token job "glcbt-64_aaaaaaaaaaaaaaaaaaaaaaaa"', 'body:token - "-1.25"'])
  for (const pieces of everySplit(body)) {
    const decoder = new StringDecoder('utf8')
    assert.deepEqual(view(scanPieces([decoder.write(pieces[0]!), decoder.write(pieces[1]!), decoder.end()])), expected, `cut at byte ${pieces[0]!.length}`)
  }
  // Cut inside every escape of the text itself, character by character.
  assert.deepEqual(view(scanPieces([...body])), expected)
  // Through the guard: the request's own token passes, cut anywhere; a different one never does.
  const own = body.replace('"token": -12.5e-1, ', '')
  for (const pieces of everySplit(own)) {
    const passed = await guard(pieces, { allowedToken: A })
    assert.equal(passed.code, null)
    assert.ok(passed.out.equals(Buffer.from(own)), 'forwarded byte for byte')
    assert.equal((await guard(pieces, { allowedToken: B })).code, 'CREDENTIAL_AMBIGUOUS')
  }
})

test('a surrogate pair escaped in a key or value is one character, as JSON.parse reads it', () => {
  const key = '{"\\ud83d\\ude00job_token": "x", "job_token": "\\ud83d\\ude00"}'
  assert.deepEqual(view(scanJson(Buffer.from(key))), view(jsonCredentials(Buffer.from(key))))
  assert.deepEqual(scanJson(Buffer.from(key)).map(c => c.secret), ['\u{1f600}'])
  // A lone surrogate is kept as JSON.parse keeps it.
  const lone = '{"token": "\\ud83d"}'
  assert.deepEqual(scanJson(Buffer.from(lone)).map(c => c.secret), ['\ud83d'])
})

test('a credential name only counts at the top level; a job token shape counts at any depth of a member', () => {
  const body = JSON.stringify({ release: { job_token: 'x', deep: [[{ y: A }]] }, token: 'trigger-1', [A]: 'key shaped like a token' })
  const found = scanJson(Buffer.from(body))
  assert.deepEqual(view(found), ['body:* job "glcbt-64_aaaaaaaaaaaaaaaaaaaaaaaa"', 'body:token - "trigger-1"'])
  assert.deepEqual(view(found), view(jsonCredentials(Buffer.from(body))))
  assert.deepEqual(scanJson(Buffer.from(JSON.stringify([{ job_token: A }, A]))), [], 'an array document has no parameters, as in the buffered scan')
  assert.deepEqual(scanJson(Buffer.from(JSON.stringify(A))), [], 'nor has a string document')
})

test('invalid JSON is refused as the buffered path refuses it; blank bodies pass', () => {
  const cases: Array<[string, boolean]> = [
    ['', true], ['  \n', true], ['\u00a0\ufeff', true], ['{}', true], ['{} ', true], ['1', true], ['-0.5E+3', true],
    ['{', false], ['{"a":1,}', false], ['[1,]', false], ['{"a" 1}', false], ['01', false], ['1.', false], ['-', false], ['1e', false],
    ['"a\nb"', false], ['"\\x"', false], ['"\\u12g4"', false], ['tru', false], ['nul', false], ['{} {}', false], ['\ufeff{}', false],
    ['{"a":1]', false], ['[1}', false], ["{'a':1}", false], ['NaN', false], ['{"a":1} \u00a0', false], ['"\\u00', false]
  ]
  for (const [text, ok] of cases) {
    let buffered = true
    try { jsonCredentials(Buffer.from(text)) } catch { buffered = false }
    assert.equal(buffered, ok, `buffered reading of ${JSON.stringify(text)}`)
    let streamed = true
    try { scanJson(Buffer.from(text)) } catch (err) {
      assert.ok(err instanceof IdentityError)
      assert.equal(err.code, 'BODY_NOT_PARSEABLE')
      streamed = false
    }
    assert.equal(streamed, ok, `streamed reading of ${JSON.stringify(text)}`)
  }
})

test('nesting deeper than the limit is refused with its own code', async () => {
  const ok = `{"a":${'['.repeat(511)}1${']'.repeat(511)}}`
  assert.deepEqual(scanJson(Buffer.from(ok)), [])
  const deep = `{"a":${'['.repeat(512)}1${']'.repeat(512)}}`
  assert.throws(() => scanJson(Buffer.from(deep)), (err: unknown) => err instanceof IdentityError && err.code === 'JSON_TOO_DEEP')
  const r = await guard([`{"a":${'['.repeat(100_000)}`])
  assert.equal(r.code, 'JSON_TOO_DEEP')
  assert.ok(r.out.length === 0, 'the chunk that goes too deep is not let through')
})

test('a 10 MiB string: memory stays flat, and a token after it is found', async () => {
  const tarball = 'QUJD'.repeat(10 * 1024 * 1024 / 4)
  const pieces = [`{"_attachments": {"p.tgz": {"data": "`, ...Array.from({ length: 160 }, (_, i) => tarball.slice(i * 65536, (i + 1) * 65536)), `"}}, "job_token": "${B}"}`]
  global.gc?.()
  const before = process.memoryUsage().heapUsed
  let peak = before
  const found: Credential[] = []
  const s = new JsonScanner(c => { found.push(c) })
  for (const p of pieces) {
    s.write(p)
    peak = Math.max(peak, process.memoryUsage().heapUsed)
  }
  s.end()
  assert.deepEqual(view(found), [`body:job_token job ${JSON.stringify(B)}`])
  // The text pieces themselves are held by the test; the scanner adds at most a token's worth.
  // A leak of the string would be 20 MiB (UTF-16) at least.
  assert.ok(peak - before < 8 * 1024 * 1024, `heap grew by ${peak - before} bytes`)

  const r = await guard(pieces, { allowedToken: A })
  assert.equal(r.code, 'CREDENTIAL_AMBIGUOUS')
  const total = pieces.reduce((n, p) => n + Buffer.byteLength(p), 0)
  assert.ok(r.out.length < total, 'the last chunk, holding the token, is not let through')
  assert.ok(r.out.length >= total - Buffer.byteLength(pieces.at(-1)!), 'everything before it streamed')
})

test('a long credential value is kept truncated: it never matches the request token', async () => {
  const long = A + 'x'.repeat(9000)
  const r = await guard([JSON.stringify({ job_token: long })], { allowedToken: long })
  assert.equal(r.code, 'CREDENTIAL_AMBIGUOUS')
  const found: Array<[Credential, boolean]> = []
  const s = new JsonScanner((c, truncated) => { found.push([c, truncated]) })
  s.write(JSON.stringify({ description: 'y'.repeat(100_000), token: 'short' }))
  s.end()
  assert.deepEqual(found.map(([c, t]) => [c.where, c.secret, t]), [['body:token', 'short', false]], 'a long value under another name is no credential')
})

test('a top-level key too long to read is refused only when it could name a credential holding a value', () => {
  const spaces = ' '.repeat(10_000)
  assert.throws(() => scanJson(Buffer.from(`{"${spaces}token": "x"}`)), (err: unknown) => err instanceof IdentityError && err.code === 'JSON_KEY_TOO_LONG')
  assert.deepEqual(scanJson(Buffer.from(`{"${spaces}token": null}`)), [], 'no value: nothing to refuse')
  assert.deepEqual(scanJson(Buffer.from(`{"${'k'.repeat(10_000)}": "x"}`)), [], 'a long plain name is no credential')
  assert.deepEqual(view(scanJson(Buffer.from(`{"${'k'.repeat(10_000)}": "${A}"}`))), [`body:* job ${JSON.stringify(A)}`])
})

test('refusal rules: the request token may repeat; other credentials follow the multipart guard', async () => {
  const body = (o: object): string[] => [JSON.stringify({ name: 'x', data: 'z'.repeat(1000), ...o })]
  assert.equal((await guard(body({ job_token: A }), { allowedToken: A })).code, null, 'the same token repeated')
  assert.equal((await guard(body({ job_token: B }), { allowedToken: A })).code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal((await guard(body({ token: 'trigger' }), { allowedToken: A })).code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal((await guard(body({ job_token: A }))).code, 'JSON_CREDENTIAL_NOT_ALLOWED', 'no header token: a job token cannot be resolved any more')
  assert.equal((await guard(body({ readme: A }))).code, 'JSON_CREDENTIAL_NOT_ALLOWED', 'a job token shape under any name')
  assert.equal((await guard(body({ private_token: 'glpat-x' }))).code, null, 'another credential: GitLab authenticates it')
  assert.equal((await guard(body({ private_token: 'glpat-x' }), { refuseAnyCredential: true })).code, 'JSON_CREDENTIAL_NOT_ALLOWED', 'package writes refuse any')
  assert.equal((await guard(body({ release: { job_token: 'not-a-job-token' } }), { allowedToken: A })).code, null, 'a nested name is no parameter')
  assert.equal((await guard(body({ release: { notes: B } }), { allowedToken: A })).code, 'CREDENTIAL_AMBIGUOUS', 'a nested job token shape is')
  const clean = body({ version: '1.0.0' })
  const r = await guard(clean, { allowedToken: A })
  assert.equal(r.code, null)
  assert.equal(r.out.toString(), clean[0], 'bytes pass unchanged')
})

// Strings drawn mostly from the names and values that matter.
const key = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('job_token', 'token', 'access_token', 'bearer_token', 'private_token', '[job_token]', 'token[]', ' token', 'jobtoken', '_json', '__proto__', '1', '') },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }) }
)
const leafString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(A, B, 'glcbt-', 'x-glcbt-y', 'pre.fix-glcbt-z', '', 'glpat-1', 'caf\u00e9', '\ud83d\ude00', '\u2028') },
  { weight: 2, arbitrary: fc.string({ maxLength: 12, unit: 'binary' }) }
)
const json = fc.letrec(tie => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    leafString,
    fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(true, false, null, 0, -0, 1e21, 5e-7)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }))
}))

test('differential: for random JSON documents the guard and the buffered scan find the same credentials', () => {
  let withCredentials = 0
  fc.assert(fc.property(
    fc.oneof({ weight: 4, arbitrary: fc.dictionary(key, json.value, { maxKeys: 6 }) }, { weight: 1, arbitrary: json.value }),
    fc.boolean(),
    fc.array(fc.nat(), { maxLength: 6 }),
    fc.array(fc.tuple(key, leafString), { maxLength: 2 }),
    (doc, pretty, cuts, repeats) => {
      let text = JSON.stringify(doc, null, pretty ? 2 : undefined) ?? 'null'
      // Repeated top-level keys, which JSON.stringify never writes.
      if (text.startsWith('{') && repeats.length > 0) text = `{${repeats.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}${text === '{}' ? '' : ','}${text.slice(1)}`
      const expected = view(jsonCredentials(Buffer.from(text)))
      const positions = [...new Set(cuts.map(c => c % (text.length + 1)))].sort((a, b) => a - b)
      const pieces: string[] = []
      let at = 0
      for (const p of positions) { pieces.push(text.slice(at, p)); at = p }
      pieces.push(text.slice(at))
      assert.deepEqual(view(scanPieces(pieces)), expected, text)
      if (expected.length > 0) withCredentials++
    }), { numRuns: 2000 })
  assert.ok(withCredentials > 200, `only ${withCredentials} documents held a credential`)
})

test('untyped: a body that starts as a JSON object (after white space, cut anywhere) is guarded; any other passes unread', async () => {
  const untyped = { untyped: true }
  for (const pieces of everySplit(` \r\n{"job_token":"${A}"}`)) {
    assert.equal((await guard(pieces, untyped)).code, 'JSON_CREDENTIAL_NOT_ALLOWED', JSON.stringify(pieces.map(String)))
  }
  for (const text of [`[{"job_token":"${A}"}]`, `x{"job_token":"${A}"}`, '\u0089PNG{{{', '   ']) {
    const { out, code } = await guard([text], untyped)
    assert.equal(code, null, text)
    assert.equal(out.toString(), text, 'every byte let through')
  }
  // A comment Ruby's JSON skips, or white space JSON.parse refuses, before it: refused, not passed.
  for (const text of [`/**/{"job_token":"${A}"}`, `\ufeff{"a":1}`, `\f{"a":1}`]) assert.equal((await guard([text], untyped)).code, 'BODY_NOT_PARSEABLE', JSON.stringify(text))
  assert.equal((await guard(['{"a":', '1}'], untyped)).code, null)
  assert.equal((await guard([`{"job_token":"${A}"}`], { ...untyped, allowedToken: A })).code, null, 'the request\'s own token repeated')
})
