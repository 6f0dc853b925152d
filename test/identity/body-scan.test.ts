// Tokens in form, JSON and small multipart bodies: found, enforced, and forwarded byte for byte;
// bodies that cannot be inspected are refused, other types are not read.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import fc from 'fast-check'
import { identityFor, rawRequest, startStageServer, stubResolver, type StageReport } from './harness.ts'
import { createBodyScanner, jsonCredentials, parseMultipartBoundary } from '../../src/identity/body-scan.ts'
import { IdentityError } from '../../src/identity/types.ts'

const A = 'glcbt-64_AAAAaaaa1111aaaa'
const B = 'glcbt-64_BBBBbbbb2222bbbb'
const TRIGGER = 'glptt-tttttttttttttttttttt'
const TRIGGER_PIPELINE = '/api/v4/projects/42/trigger/pipeline'
const RELEASES = '/api/v4/projects/42/releases'
const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex')

function multipart (boundary: string, fields: Array<[string, string]>): string {
  return fields.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join('') + `--${boundary}--\r\n`
}

interface Case {
  readonly name: string
  readonly contentType?: string
  readonly body: string
  readonly headers?: readonly string[]
  readonly expect: { kind: 'job', token: string } | { kind: 'none' } | { kind: 'deny', status: number, code: string }
}

const cases: Case[] = [
  { name: 'form token= (curl --data token=$CI_JOB_TOKEN)', contentType: 'application/x-www-form-urlencoded', body: `token=${A}&ref=main`, expect: { kind: 'job', token: A } },
  { name: 'form job_token percent-encoded', contentType: 'application/x-www-form-urlencoded', body: `ref=main&job_token=${encodeURIComponent(A)}`, expect: { kind: 'job', token: A } },
  { name: 'form with a charset parameter', contentType: 'application/x-www-form-urlencoded; charset=utf-8', body: `access_token=${A}`, expect: { kind: 'job', token: A } },
  { name: "media type cut at ',' as Rack does", contentType: 'application/x-www-form-urlencoded, text/plain', body: `job_token=${A}`, expect: { kind: 'job', token: A } },
  { name: 'no Content-Type: Rack parses it as a form', body: `job_token=${A}`, expect: { kind: 'job', token: A } },
  { name: 'form with a trigger token only', contentType: 'application/x-www-form-urlencoded', body: `token=${TRIGGER}&ref=main`, expect: { kind: 'none' } },
  { name: 'JSON job_token', contentType: 'application/json', body: JSON.stringify({ ref: 'main', job_token: A }), expect: { kind: 'job', token: A } },
  { name: 'JSON bearer_token, vendor +json type', contentType: 'application/vnd.api+json', body: JSON.stringify({ bearer_token: A }), expect: { kind: 'job', token: A } },
  { name: 'JSON key written with an escape', contentType: 'application/json', body: `{"job\\u005ftoken": "${A}"}`, expect: { kind: 'job', token: A } },
  { name: 'JSON repeated key with two tokens', contentType: 'application/json', body: `{"job_token": "${A}", "job_token": "${B}"}`, expect: { kind: 'deny', status: 401, code: 'CREDENTIAL_AMBIGUOUS' } },
  { name: 'JSON nested job_token is not a parameter', contentType: 'application/json', body: JSON.stringify({ release: { job_token: 'x' } }), expect: { kind: 'none' } },
  { name: 'JSON job token in another top-level field', contentType: 'application/json', body: JSON.stringify({ description: A }), expect: { kind: 'job', token: A } },
  { name: 'JSON null credential is absent', contentType: 'application/json', body: JSON.stringify({ job_token: null, name: 'v1' }), expect: { kind: 'none' } },
  { name: 'JSON that does not parse', contentType: 'application/json', body: `{"job_token": "${A}"`, expect: { kind: 'deny', status: 400, code: 'BODY_NOT_PARSEABLE' } },
  { name: 'header token and the same token in the body', contentType: 'application/json', body: JSON.stringify({ job_token: A }), headers: [`JOB-TOKEN: ${A}`], expect: { kind: 'job', token: A } },
  { name: 'header token and another in the body', contentType: 'application/x-www-form-urlencoded', body: `job_token=${B}`, headers: [`JOB-TOKEN: ${A}`], expect: { kind: 'deny', status: 401, code: 'CREDENTIAL_AMBIGUOUS' } },
  { name: 'header token and a trigger token in the body', contentType: 'application/x-www-form-urlencoded', body: `token=${TRIGGER}`, headers: [`JOB-TOKEN: ${A}`], expect: { kind: 'deny', status: 401, code: 'CREDENTIAL_AMBIGUOUS' } },
  { name: 'small multipart: curl --form token=$CI_JOB_TOKEN is enforced', contentType: 'multipart/form-data; boundary=XyZ', body: multipart('XyZ', [['token', A], ['ref', 'main']]), expect: { kind: 'job', token: A } },
  { name: 'small multipart: trigger token passes', contentType: 'multipart/form-data; boundary="XyZ"', body: multipart('XyZ', [['token', TRIGGER], ['ref', 'main']]), expect: { kind: 'none' } },
  { name: 'multipart/mixed is parsed too', contentType: 'multipart/mixed; boundary=XyZ', body: multipart('XyZ', [['job_token', A]]), expect: { kind: 'job', token: A } },
  { name: 'multipart with two boundary parameters', contentType: 'multipart/form-data; boundary=a; boundary=b', body: multipart('a', [['x', 'y']]), expect: { kind: 'deny', status: 400, code: 'MULTIPART_BAD_BOUNDARY' } },
  { name: 'multipart with xboundary= (Rack would take it)', contentType: 'multipart/form-data; xboundary=a', body: multipart('a', [['x', 'y']]), expect: { kind: 'deny', status: 400, code: 'MULTIPART_BAD_BOUNDARY' } },
  { name: 'gzip-encoded form cannot be read', contentType: 'application/x-www-form-urlencoded', headers: ['Content-Encoding: gzip'], body: 'compressed', expect: { kind: 'deny', status: 415, code: 'BODY_ENCODING_NOT_INSPECTABLE' } },
  { name: 'octet-stream is not read by GitLab, so not by us', contentType: 'application/octet-stream', body: `job_token=${A}`, expect: { kind: 'none' } },
  { name: 'text/plain is not read either', contentType: 'text/plain', body: `{"job_token": "${A}"}`, expect: { kind: 'none' } }
]

test('credentials in request bodies', async (t) => {
  const resolver = stubResolver({ [A]: identityFor(1), [B]: identityFor(2) })
  const server = await startStageServer({ resolver })
  t.after(() => server.close())

  for (const c of cases) {
    await t.test(c.name, async () => {
      const headers = [...(c.contentType === undefined ? [] : [`Content-Type: ${c.contentType}`]), ...(c.headers ?? [])]
      const res = await rawRequest(server.port, [`POST ${TRIGGER_PIPELINE} HTTP/1.1`, ...headers], c.body)
      if (c.expect.kind === 'deny') {
        assert.equal(res.status, c.expect.status, res.body)
        assert.equal((JSON.parse(res.body) as { code: string }).code, c.expect.code)
        return
      }
      assert.equal(res.status, 200, res.body)
      const report = JSON.parse(res.body) as StageReport
      assert.equal(report.kind, c.expect.kind)
      if (c.expect.kind === 'job') assert.equal(report.token, c.expect.token)
      // Whatever was read for inspection is forwarded unchanged.
      assert.equal(report.bodySha256, sha256(c.body))
      assert.equal(report.bodyLength, Buffer.byteLength(c.body))
    })
  }
})

test('bodies over the inspection limit are refused, not forwarded unread', async (t) => {
  const server = await startStageServer({ resolver: stubResolver({}), body: { maxBytes: 1024 } })
  t.after(() => server.close())
  const big = 'x='.padEnd(2000, 'y')

  await t.test('declared length over the limit', async () => {
    const res = await rawRequest(server.port, [`POST ${RELEASES} HTTP/1.1`, 'Content-Type: application/x-www-form-urlencoded'], big)
    assert.equal(res.status, 413)
    const body = JSON.parse(res.body) as { code: string, message: string }
    assert.equal(body.code, 'BODY_TOO_LARGE_TO_INSPECT')
    assert.match(body.message, /too large to inspect/)
  })

  await t.test('chunked JSON streams through the JSON guard: a job token in it cannot be resolved first', async () => {
    const json = JSON.stringify({ name: 'v1', description: 'd'.repeat(1500), job_token: A })
    const chunked = `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`
    const res = await rawRequest(server.port, [`POST ${RELEASES} HTTP/1.1`, 'Content-Type: application/json', 'Transfer-Encoding: chunked'], chunked)
    assert.equal(res.status, 200, res.body)
    const report = JSON.parse(res.body) as StageReport
    assert.equal(report.bodyKind, 'stream')
    assert.equal(report.bodyError, 'JSON_CREDENTIAL_NOT_ALLOWED')
    assert.ok(report.bodyLength < json.length, 'the guard stopped before the end')
  })

  await t.test('a body just under the limit is read', async () => {
    const body = `job_token=${A}&x=`.padEnd(1024, 'y')
    const res = await rawRequest(server.port, [`POST ${RELEASES} HTTP/1.1`, 'Content-Type: application/x-www-form-urlencoded'], body)
    // The stub knows no token: the body was read and the token it holds was resolved (and refused).
    assert.equal(res.status, 401)
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'TOKEN_UNKNOWN')
  })

  await t.test('an uninspected type of any size passes', async () => {
    const res = await rawRequest(server.port, [`PUT ${RELEASES} HTTP/1.1`, 'Content-Type: application/octet-stream'], big)
    assert.equal(res.status, 200)
    assert.equal((JSON.parse(res.body) as StageReport).bodySha256, sha256(big))
  })
})

test('plan: which bodies are buffered, streamed, passed or refused', () => {
  const scanner = createBodyScanner({ maxBytes: 100 })
  assert.deepEqual(scanner.plan({}), { kind: 'pass' }, 'no body')
  assert.deepEqual(scanner.plan({ 'content-length': '0', 'content-type': 'application/json' }), { kind: 'pass' })
  assert.deepEqual(scanner.plan({ 'content-length': '10', 'content-type': 'application/json' }), { kind: 'buffer', type: 'json' })
  assert.deepEqual(scanner.plan({ 'content-length': '10', 'content-type': 'multipart/form-data; boundary=b' }), { kind: 'buffer', type: 'multipart', boundary: 'b' })
  assert.deepEqual(scanner.plan({ 'content-length': '101', 'content-type': 'multipart/form-data; boundary=b' }), { kind: 'stream', boundary: 'b' })
  assert.deepEqual(scanner.plan({ 'transfer-encoding': 'chunked', 'content-type': 'multipart/form-data; boundary=b' }), { kind: 'stream', boundary: 'b' })
  assert.deepEqual(scanner.plan({ 'content-length': '101', 'content-type': 'application/json' }), { kind: 'stream', type: 'json' })
  assert.deepEqual(scanner.plan({ 'transfer-encoding': 'chunked', 'content-type': 'application/json' }), { kind: 'stream', type: 'json', readFirst: true })
  assert.deepEqual(scanner.plan({ 'content-length': '101', 'content-type': 'application/x-www-form-urlencoded' }), { kind: 'rejected', code: 'BODY_TOO_LARGE_TO_INSPECT' })
  assert.deepEqual(scanner.plan({ 'content-length': '5', 'content-type': 'image/png' }), { kind: 'pass' })
})

test('multipart boundary parsing refuses what parsers read differently', () => {
  assert.equal(parseMultipartBoundary('multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW'), '----WebKitFormBoundary7MA4YWxkTrZu0gW')
  assert.equal(parseMultipartBoundary('multipart/form-data; BOUNDARY="abc"; charset=utf-8'), 'abc')
  assert.equal(parseMultipartBoundary('multipart/form-data'), null)
  assert.equal(parseMultipartBoundary('multipart/form-data; boundary="a,b"'), null, 'Rack stops at the comma')
  assert.equal(parseMultipartBoundary('multipart/form-data; boundary=abc def'), null)
  assert.equal(parseMultipartBoundary('multipart/form-data; boundary=' + 'x'.repeat(71)), null)
})

test('JSON members are read as sent, repeats included', () => {
  const found = jsonCredentials(Buffer.from(`{"a": [1, {"job_token": "x"}], "token" : 7, "job_token": "${A}", "access_token": {}}`))
  assert.deepEqual(found.map(c => [c.where, c.secret, c.jobToken]), [['body:token', '7', false], ['body:job_token', A, true]])
  assert.deepEqual(jsonCredentials(Buffer.from(`[{"job_token": "${A}"}]`)), [], 'a top-level array gives no parameters')
})

test('JSON nested as deep as the guard reads is read without overflowing the stack (found by fuzzing); deeper is refused', () => {
  const deep = (n: number): Buffer => Buffer.from(`{"a":${'['.repeat(n)}"glcbt-deep"${']'.repeat(n)},"job_token":{"x":["glcbt-leaf"]}}`)
  assert.deepEqual(jsonCredentials(deep(511)).map(c => [c.secret, c.where]), [['glcbt-deep', 'body:*'], ['glcbt-leaf', 'body:job_token']])
  assert.throws(() => jsonCredentials(deep(8000)), (err: unknown) => err instanceof IdentityError && err.code === 'JSON_TOO_DEEP')
})

test('readFirst: a chunked JSON body that ends within the limit is inspected whole; a longer one replays every byte', async () => {
  const scanner = createBodyScanner({ maxBytes: 100 })
  const short = JSON.stringify({ job_token: 'glcbt-short' })
  const whole = await scanner.readFirst(Readable.from([Buffer.from(short.slice(0, 7)), Buffer.from(short.slice(7))]))
  assert.equal(whole.kind, 'buffered')
  if (whole.kind === 'buffered') {
    assert.equal(whole.bytes.toString(), short)
    assert.deepEqual(whole.credentials.map(c => c.secret), ['glcbt-short'])
  }
  const long = JSON.stringify({ data: 'x'.repeat(300), job_token: 'glcbt-late' })
  const chunks = [long.slice(0, 60), long.slice(60, 130), long.slice(130)].map(c => Buffer.from(c))
  const longer = await scanner.readFirst(Readable.from(chunks))
  assert.equal(longer.kind, 'longer')
  if (longer.kind === 'longer') {
    const replayed: Buffer[] = []
    for await (const c of longer.stream) replayed.push(c as Buffer)
    assert.equal(Buffer.concat(replayed).toString(), long, 'what was read, then the rest, nothing lost')
  }
  const broken = await scanner.readFirst(Readable.from([Buffer.from('{"job_token":')]))
  assert.deepEqual(broken, { kind: 'rejected', code: 'BODY_NOT_PARSEABLE' })
})

test('plan: a body without a Content-Type is a POST\'s form, and streamed as maybe-JSON for PUT, PATCH and DELETE (what Grape reads)', () => {
  const scanner = createBodyScanner()
  const sized = { 'content-length': '10' }
  assert.deepEqual(scanner.plan(sized, 'POST'), { kind: 'buffer', type: 'form', untyped: true })
  for (const method of ['PUT', 'PATCH', 'DELETE']) assert.deepEqual(scanner.plan(sized, method), { kind: 'stream', type: 'json', untyped: true }, method)
  assert.deepEqual(scanner.plan(sized, 'GET'), { kind: 'pass' })
  // Grape does not inflate it: it parses the bytes as sent, so they are read as sent.
  assert.deepEqual(scanner.plan({ ...sized, 'content-encoding': 'gzip' }, 'PUT'), { kind: 'stream', type: 'json', untyped: true }, 'Grape reads the bytes as sent')
  assert.deepEqual(scanner.plan({ ...sized, 'content-type': 'application/octet-stream' }, 'PUT'), { kind: 'pass' })
})

test('parseMultipartBoundary reads step by step what one expression reads (ASCII, no white space around =), in linear time', () => {
  // One expression, the reference on short inputs.
  const reference = (contentType: string): string | null => {
    if (!/^[\t\x20-\x7e]*$/.test(contentType)) return null
    if ((contentType.match(/boundary\s*=/gi) ?? []).length !== 1) return null
    const m = /;[ \t]*boundary=(?:"([^"]*)"|([^\s;,"]*))\s*(?:;.*)?$/is.exec(contentType)
    if (m === null) return null
    const value = m[1] ?? m[2] ?? ''
    return /^[A-Za-z0-9'()+_\-./:=?]{1,70}$/.test(value) ? value : null
  }
  const atom = fc.constantFrom('multipart/form-data', ';', ' ', '\t', 'boundary', 'BOUNDARY', '=', '"', 'abc', 'x y', ',', '\n', 'charset=utf-8', 'xboundary', '\xa0')
  fc.assert(fc.property(fc.array(atom, { maxLength: 16 }).map(a => a.join('')), (ct) => {
    assert.equal(parseMultipartBoundary(ct), reference(ct), JSON.stringify(ct))
  }), { numRuns: 5_000 })
  // White space after the value: the expression took 114 ms for 16 KiB of it; read step by step,
  // 1 MiB takes milliseconds. A hang detector only, with room for a loaded machine (a 50 ms bound
  // on 16 KiB failed under load).
  const started = performance.now()
  assert.equal(parseMultipartBoundary('multipart/form-data;boundary=' + '\t'.repeat(1024 * 1024) + '=\t='), null)
  assert.ok(performance.now() - started < 5000, 'a hang detector: milliseconds now')
})
