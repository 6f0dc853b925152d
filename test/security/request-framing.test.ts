// The bytes GitLab receives are exactly the requests the gate decided on, whatever framing the
// client writes: raw sockets on both sides (the client writes its bytes itself, and a TCP relay in
// front of the fake GitLab keeps every byte the gate sends). Requests Node's parser refuses (the
// shapes of request smuggling) are answered with the gate's JSON error, logged and counted, and
// nothing of them goes upstream; what it accepts is sent on with the gate's own framing.

import assert from 'node:assert/strict'
import { connect, createServer, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { exchange as rawExchange } from '../helpers/raw-upstream.ts'

const OK = '/api/v4/projects/200/packages' // acme/lib lets the app job read packages
const DENIED = '/api/v4/projects/300/packages' // other/tools lists nobody
const JOB = `Job-Token: ${TOKENS.app}\r\n`

interface Relayed { gate: TestGate, port: number, upstream: () => string, clear: () => void }

/** A gate whose upstream is a TCP relay to the fake GitLab that keeps the bytes the gate sends. */
async function relayedGate (t: TestContext): Promise<Relayed> {
  const bytes: Buffer[] = []
  const sockets: Socket[] = []
  let target = 0
  const relay = createServer(from => {
    const to = connect(target, '127.0.0.1')
    sockets.push(from, to)
    from.on('data', (c: Buffer) => { bytes.push(c); to.write(c) })
    to.on('data', (c: Buffer) => from.write(c))
    from.on('end', () => to.end())
    to.on('end', () => from.end())
    from.on('error', () => to.destroy())
    to.on('error', () => from.destroy())
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  t.after(() => { for (const s of sockets) s.destroy(); relay.close() })
  const gate = await startTestGate(t, { GATE_UPSTREAM_URL: `http://127.0.0.1:${(relay.address() as { port: number }).port}` })
  target = Number(new URL(gate.gitlab.url).port)
  // The gate's own calls (a project's visibility, with the service token) are not the client's.
  const upstream = (): string => Buffer.concat(bytes).toString('latin1').split(/(?=^[A-Z]+ \/\S* HTTP\/1\.1\r$)/m)
    .filter(request => !/^private-token: glpat-service-token\r$/mi.test(request)).join('')
  return { gate, port: Number(new URL(gate.url).port), upstream, clear: () => { bytes.length = 0 } }
}

/** Writes `bytes` on a new connection; the text answered once it closes or goes quiet. */
const exchange = (port: number, bytes: string): Promise<{ text: string, closed: boolean }> => rawExchange(port, bytes, 1500, 400)

const bodyOf = (text: string): Record<string, unknown> => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>

// Each would let a proxy and the server behind it cut the bytes into different requests; the
// DENIED request inside them must not reach GitLab in any reading.
const hidden = `GET ${DENIED} HTTP/1.1\r\nHost: x\r\n${JOB}\r\n`
const REFUSED: ReadonlyArray<{ name: string, bytes: string, status?: number }> = [
  { name: 'Content-Length and Transfer-Encoding', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nContent-Length: ${5 + hidden.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}` },
  { name: 'two equal Content-Lengths', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nContent-Length: ${hidden.length}\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}` },
  { name: 'two different Content-Lengths', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}` },
  { name: 'a Content-Length list', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nContent-Length: 0, ${hidden.length}\r\n\r\n${hidden}` },
  { name: 'Transfer-Encoding: chunked, identity', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${hidden}` },
  { name: 'Transfer-Encoding: xchunked', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${hidden}` },
  { name: 'Transfer-Encoding folded (obs-fold)', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${hidden}` },
  { name: 'a space before the colon', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${hidden}` },
  { name: 'Transfer-Encoding twice', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}` },
  { name: 'a chunk size 0x...', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n` },
  { name: 'a chunk size past 64 bits', bytes: `POST ${OK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1${'0'.repeat(16)}${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n` },
  { name: 'bare LF line ends', bytes: `GET ${DENIED} HTTP/1.1\nHost: x\n${JOB.trimEnd()}\n\n` },
  { name: 'a bare CR in a header value', bytes: `GET ${OK} HTTP/1.1\r\nHost: x\r\nX-A: a\r${JOB}\r\n` },
  { name: 'a NUL in a header value', bytes: `GET ${OK} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n${JOB}\r\n` },
  { name: 'headers over the size limit', bytes: `GET ${DENIED} HTTP/1.1\r\nHost: x\r\n${JOB}X-Pad: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431 }
]

test('a request Node\'s parser refuses: the gate\'s JSON error, a decision line, a count, and nothing upstream', async t => {
  const r = await relayedGate(t)
  for (const c of REFUSED) {
    r.clear()
    const before = r.gate.logs.length
    const { text, closed } = await exchange(r.port, c.bytes)
    const status = c.status ?? 400
    const code = status === 431 ? 'REQUEST_HEADERS_TOO_LARGE' : 'REQUEST_NOT_PARSEABLE'
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), c.name)
    assert.ok(closed, `${c.name}: the connection is closed`)
    assert.match(text, /\r\nconnection: close\r\n/i, c.name)
    const body = bodyOf(text)
    assert.equal(body.code, code, c.name)
    assert.match(String(body.message), new RegExp(`^${status} `), c.name)
    assert.equal(typeof body.request_id, 'string', c.name)
    assert.equal(r.upstream(), '', `${c.name}: nothing reached GitLab`)
    const line = r.gate.logs.slice(before).find(l => l.msg === 'decision')
    assert.ok(line !== undefined, `${c.name}: a decision line`)
    assert.equal(line.request_id, body.request_id, c.name)
    assert.deepEqual([line.decision, line.reason, line.stage, line.status], ['deny', code, 'http_parser', status], c.name)
    assert.match(String(line.parser_error), /^HPE_/, c.name)
    assert.ok(!JSON.stringify(line).includes(TOKENS.app), `${c.name}: the refused bytes are not logged`)
  }
  const scrape = await (await fetch(`${r.gate.healthUrl}/metrics`)).text()
  assert.match(scrape, /job_token_gate_requests_total\{decision="deny",reason="REQUEST_NOT_PARSEABLE",resource="none",method="other"\} 14/)
  assert.match(scrape, /job_token_gate_requests_total\{decision="deny",reason="REQUEST_HEADERS_TOO_LARGE",resource="none",method="other"\} 1/)
})

test('a CONNECT is answered 405 with the gate\'s JSON error, logged and counted; nothing is tunnelled', async t => {
  const r = await relayedGate(t)
  // With bytes after it: Node hands them to the tunnel it would open, never to the parser.
  const { text, closed } = await exchange(r.port, `CONNECT 127.0.0.1:${new URL(r.gate.gitlab.url).port} HTTP/1.1\r\nHost: x\r\n${JOB}\r\n${hidden}`)
  assert.match(text, /^HTTP\/1\.1 405 /)
  assert.ok(closed, 'the connection is closed')
  const body = bodyOf(text)
  assert.equal(body.code, 'CONNECT_NOT_SUPPORTED')
  assert.equal(r.upstream(), '', 'nothing reached GitLab')
  const line = r.gate.logs.find(l => l.msg === 'decision' && l.reason === 'CONNECT_NOT_SUPPORTED')
  assert.ok(line !== undefined, 'a decision line')
  assert.deepEqual([line.request_id, line.method, line.decision, line.stage, line.status], [body.request_id, 'CONNECT', 'deny', 'http_parser', 405])
  assert.ok(!JSON.stringify(line).includes(TOKENS.app), 'no token logged')
  const scrape = await (await fetch(`${r.gate.healthUrl}/metrics`)).text()
  assert.match(scrape, /job_token_gate_requests_total\{decision="deny",reason="CONNECT_NOT_SUPPORTED",resource="none",method="other"\} 1/)
})

test('what the parser accepts goes upstream framed by the gate, each request decided on its own', async t => {
  const r = await relayedGate(t)

  // A request in the body of another (Content-Length: 0) is the next request: decided and denied.
  let got = await exchange(r.port, `POST ${OK} HTTP/1.1\r\nHost: x\r\n${JOB}Content-Length: 0\r\n\r\n${hidden}`)
  assert.deepEqual([...got.text.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map(m => m[1]), ['200', '403'])
  assert.match(got.text, /"code":"NOT_ALLOWLISTED"/)
  assert.doesNotMatch(r.upstream(), /projects\/300\/packages/)
  assert.equal((r.upstream().match(/^POST /gm) ?? []).length, 1)

  // A Transfer-Encoding that ends in chunked, chunk extensions and leading zeros: GitLab gets the
  // body with a length of the gate's, and no trailer (a credential in one never reaches it).
  r.clear()
  got = await exchange(r.port, `POST ${OK} HTTP/1.1\r\nHost: x\r\n${JOB}Transfer-Encoding: identity, chunked\r\n\r\n003;ext="x"\r\nabc\r\n0\r\nPrivate-Token: glpat-trailer\r\nJob-Token: ${TOKENS.tools}\r\n\r\n`)
  assert.match(got.text, /^HTTP\/1\.1 200 /)
  const sent = r.upstream()
  assert.match(sent, /\r\ncontent-length: 3\r\n(?:.*\r\n)*\r\nabc$/)
  assert.doesNotMatch(sent, /transfer-encoding|glpat-trailer|toolsjob/i)

  // Upgrade is not proxied: GitLab gets a plain request, and bytes written after the upgrade
  // request reach nothing.
  r.clear()
  got = await exchange(r.port, `GET ${OK} HTTP/1.1\r\nHost: x\r\n${JOB}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n${hidden}`)
  assert.deepEqual([...got.text.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map(m => m[1]), ['200'])
  assert.doesNotMatch(r.upstream(), /upgrade|projects\/300/i)

  // An absolute-form target is refused before anything is decided on its path.
  r.clear()
  got = await exchange(r.port, `GET http://gitlab.example.com${DENIED} HTTP/1.1\r\nHost: x\r\n${JOB}\r\n`)
  assert.match(got.text, /^HTTP\/1\.1 400 /)
  assert.equal(bodyOf(got.text).code, 'PATH_NOT_ABSOLUTE')
  assert.equal(r.upstream(), '')
})
