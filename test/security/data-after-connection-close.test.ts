// Finding: a client that sent a request with `Connection: close` (or an HTTP/1.0 request without
// keep-alive) and then more bytes on the same connection (a pipelined request, junk) lost the
// answer it was owed. Node's parser refuses the bytes after such a request
// (HPE_CLOSED_CONNECTION), and the gate's handler of parser errors closed the connection at once,
// while the request before them, already decided, was still waiting for GitLab's answer: never
// answered, logged CLIENT_ABORTED. GitLab's servers (Workhorse is Go's net/http; Puma) and nginx
// answer the request in full, then close, and never read what follows as a request; so does the
// gate now, on both listeners: the trailing bytes are logged once and never decided or forwarded.
// A client that sends on is neither kept by it past the client timeout, nor has the end of its
// answer lost to a reset (which Go's net/http allows: the gate lingers after the answer, as nginx).

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'

/** An answer of GitLab's larger than one read, so that a cut answer shows. */
const ANSWER = 'a'.repeat(200_000)

interface HeldGate {
  readonly g: TestGate
  readonly api: number
  readonly auth: number
  /** Forwarded requests whose answer GitLab holds. */
  readonly held: () => number
  /** Lets GitLab answer: the held forwarded requests and its own held lookups. */
  readonly release: () => void
}

/** A gate whose GitLab holds each forwarded answer until `release()`, and both its listeners. */
async function heldGate (t: TestContext): Promise<HeldGate> {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const held: Array<() => void> = []
  g.respond = (_req, res) => {
    held.push(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(ANSWER.length) })
      res.end(ANSWER)
    })
  }
  t.after(() => { g.gitlab.release() })
  return {
    g,
    api: Number(new URL(g.url).port),
    auth: g.gate.authAddress()!.port,
    held: () => held.length,
    release: () => {
      for (const answer of held.splice(0)) answer()
      g.gitlab.release()
    }
  }
}

interface Conversation {
  readonly socket: Socket
  readonly text: () => string
  readonly closed: () => boolean
}

async function open (port: number): Promise<Conversation> {
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  let text = ''
  let closed = false
  socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
  socket.on('error', () => {})
  socket.on('close', () => { closed = true })
  return { socket, text: () => text, closed: () => closed }
}

/** The answers in `text`, framed by their Content-Length (the gate's and GitLab's here all have one). */
function answersIn (text: string): Array<{ status: number, head: string, body: string }> {
  const answers = []
  let rest = text
  while (rest !== '') {
    const end = rest.indexOf('\r\n\r\n')
    assert.notEqual(end, -1, `an answer's head ends: ${JSON.stringify(rest.slice(0, 200))}`)
    const head = rest.slice(0, end)
    const status = Number(/^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1])
    const length = status === 100 ? 0 : Number(/^content-length: *(\d+)\r?$/mi.exec(head)?.[1])
    assert.ok(Number.isInteger(length), `an answer with a length: ${head}`)
    answers.push({ status, head, body: rest.slice(end + 4, end + 4 + length) })
    rest = rest.slice(end + 4 + length)
  }
  return answers
}

const linesSince = (g: TestGate, before: number): Array<Record<string, unknown>> => g.logs.slice(before).filter(l => l.msg === 'decision')
const trailing = (l: Record<string, unknown>): boolean => l.parser_error === 'HPE_CLOSED_CONNECTION'

/**
 * Writes `first` (and `then` once `afterFirst` holds), waits until the gate has met the bytes
 * after the closing request and the request waits on GitLab (`waiting`), lets GitLab answer, and
 * returns what the client read once the gate closed the connection. `flood`: the client keeps
 * writing until then.
 */
async function converse ({ g, release }: HeldGate, port: number, waiting: () => boolean, first: string, then: string, options: { afterFirst?: (text: string) => boolean, flood?: boolean } = {}): Promise<{ text: string, lines: Array<Record<string, unknown>> }> {
  const before = g.logs.length
  const c = await open(port)
  c.socket.write(first)
  if (options.afterFirst !== undefined) await eventually(() => options.afterFirst!(c.text()) || c.closed(), { message: 'the first part answered' })
  c.socket.write(then)
  const flood = options.flood === true ? setInterval(() => { if (c.socket.writable) c.socket.write(Buffer.alloc(4096, 'j')) }, 5) : undefined
  try {
    await eventually(() => (linesSince(g, before).some(trailing) && waiting()) || c.closed(), { message: 'the bytes after the closing request met while GitLab holds its answer' })
    // A client that keeps writing: its bytes pile up unread behind the answer.
    if (flood !== undefined) await new Promise(resolve => setTimeout(resolve, 100))
    release()
    // A hang detector: the gate closes the connection once the answer has gone.
    await eventually(c.closed, { timeoutMs: 30_000, message: 'the connection closed' })
    await eventually(() => linesSince(g, before).some(l => l.stage !== 'http_parser'), { message: 'the request\'s line' })
  } finally {
    clearInterval(flood)
    c.socket.destroy()
  }
  return { text: c.text(), lines: linesSince(g, before) }
}

function assertAnsweredOnce (result: { text: string, lines: Array<Record<string, unknown>> }, status: number, label: string): string {
  const answers = answersIn(result.text).filter(a => a.status !== 100)
  assert.equal(answers.length, 1, `${label}: one answer`)
  const [answer] = answers
  assert.equal(answer!.status, status, `${label}: ${answer!.head}`)
  assert.match(answer!.head, /^connection: close\r?$/mi, `${label}: the answer says the connection closes`)
  const decided = result.lines.filter(l => l.stage !== 'http_parser')
  assert.equal(decided.length, 1, `${label}: one request decided: ${JSON.stringify(decided)}`)
  assert.notEqual(decided[0]!.reason, 'CLIENT_ABORTED', `${label}: the request was answered`)
  const logged = result.lines.filter(trailing)
  assert.equal(logged.length, 1, `${label}: the bytes after it logged once`)
  assert.deepEqual([logged[0]!.decision, logged[0]!.reason, logged[0]!.stage], ['deny', 'REQUEST_NOT_PARSEABLE', 'http_parser'], label)
  return answer!.body
}

const PIPELINED = 'GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\n\r\n'

test('bytes after a Connection: close request: the request is answered in full, then the connection closes', async (t) => {
  const held = await heldGate(t)
  const { g, api } = held
  const get = (version: string, connection: string): string => `GET /api/v4/projects/200/packages HTTP/${version}\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\n${connection}\r\n`
  const put = (framing: string, body: string): string => `PUT /api/v4/projects/100/packages/generic/pkg/1.0.0/file.txt HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\nConnection: close\r\n${framing}\r\n${body}`
  const cases: Array<{ label: string, first: string, then: string, body?: number, afterFirst?: (text: string) => boolean, flood?: boolean }> = [
    { label: 'a pipelined request', first: get('1.1', 'Connection: close\r\n'), then: PIPELINED },
    { label: 'HTTP/1.0 without keep-alive', first: get('1.0', ''), then: PIPELINED },
    { label: 'junk in the same write', first: get('1.1', 'Connection: close\r\n') + 'junk', then: '' },
    { label: 'a Content-Length body and more', first: put('Content-Length: 5\r\n', 'hello'), then: PIPELINED, body: 5 },
    { label: 'a chunked body and more', first: put('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), then: 'junk', body: 5 },
    {
      label: 'Expect: 100-continue, the body and more after the 100',
      first: put('Expect: 100-continue\r\nContent-Length: 5\r\n', ''),
      then: 'hello' + PIPELINED,
      body: 5,
      afterFirst: text => text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')
    },
    { label: 'a client that keeps writing', first: get('1.1', 'Connection: close\r\n'), then: 'junk', flood: true }
  ]
  for (const c of cases) {
    const seen = g.seen.length
    const result = await converse(held, api, () => held.held() === 1, c.first, c.then, { ...(c.afterFirst === undefined ? {} : { afterFirst: c.afterFirst }), ...(c.flood === undefined ? {} : { flood: c.flood }) })
    const body = assertAnsweredOnce(result, 200, c.label)
    assert.ok(body === ANSWER, `${c.label}: GitLab's whole answer: ${body.length} bytes of ${ANSWER.length}`)
    assert.equal(g.seen.length - seen, 1, `${c.label}: GitLab saw one request`)
    if (c.body !== undefined) assert.equal(g.seen.at(-1)!.bytes, c.body, `${c.label}: with its body, and nothing after it`)
  }
  const scrape = await (await fetch(`${g.healthUrl}/metrics`)).text()
  assert.match(scrape, new RegExp(`job_token_gate_requests_total\\{decision="deny",reason="REQUEST_NOT_PARSEABLE",resource="none",method="other"\\} ${cases.length}\n`), 'counted once a connection')
})

test('bytes after a Connection: close request the gate refuses: the refusal is written in full, then the connection closes', async (t) => {
  const held = await heldGate(t)
  const { g, api } = held
  // The job's lookup held: the refusal is still being decided when the bytes after it come.
  g.gitlab.hold.add('job')
  const result = await converse(held, api, () => g.gitlab.calls.job === 1, `GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.tools}\r\nConnection: close\r\n\r\n`, PIPELINED)
  const body = JSON.parse(assertAnsweredOnce(result, 403, 'refused')) as { code?: string }
  assert.equal(body.code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('forward-auth: bytes after a Connection: close decision request; the decision is answered, then the connection closes', async (t) => {
  const held = await heldGate(t)
  const { g, auth } = held
  g.gitlab.hold.add('job')
  const result = await converse(held, auth, () => g.gitlab.calls.job === 1, `GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.lib}\r\nConnection: close\r\n\r\n`, PIPELINED)
  assertAnsweredOnce(result, 200, 'forward-auth')
  assert.equal(g.gitlab.calls.job, 1, 'one job looked up')
})

test('bytes after a Connection: close request already answered: the connection closes, nothing else decided', async (t) => {
  const { g, api } = await heldGate(t)
  g.respond = (_req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }); res.end('ok') }
  const before = g.logs.length
  const c = await open(api)
  t.after(() => { c.socket.destroy() })
  c.socket.write(`GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\nConnection: close\r\n\r\n`)
  await eventually(() => c.text().endsWith('\r\n\r\nok'), { message: 'the answer' })
  if (!c.closed()) c.socket.write(PIPELINED)
  await eventually(c.closed, { timeoutMs: 30_000, message: 'the connection closed' })
  assert.equal(answersIn(c.text()).length, 1)
  assert.equal(g.seen.length, 1, 'GitLab saw one request')
  assert.equal(linesSince(g, before).filter(l => l.stage !== 'http_parser').length, 1, 'one request decided')
})

test('bytes after a Connection: close request whose answer never comes: the client timeout still closes the connection, though the client sends on', async (t) => {
  const g = await startTestGate(t, { GATE_CLIENT_TIMEOUT_MS: '400' })
  g.respond = () => { /* GitLab never answers */ }
  const before = g.logs.length
  const c = await open(Number(new URL(g.url).port))
  t.after(() => { c.socket.destroy() })
  c.socket.write(`GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\nConnection: close\r\n\r\n${PIPELINED}`)
  await eventually(() => linesSince(g, before).some(trailing), { message: 'the bytes after the closing request met' })
  const flood = setInterval(() => { if (c.socket.writable) c.socket.write(Buffer.alloc(4096, 'j')) }, 5)
  t.after(() => { clearInterval(flood) })
  // A hang detector (GitLab's answer would time out after 60 s): what the client sends after
  // such a request is not read, so it is no activity; the silence decides when it closes.
  await eventually(c.closed, { timeoutMs: 30_000, message: 'the connection closed' })
  assert.equal(g.seen.length, 1, 'GitLab saw one request')
})

test('a client that never stops sending after a Connection: close request: its answer in full, then the connection closes', async (t) => {
  // The client timeout also bounds how long the gate reads and drops what comes after the answer.
  const g = await startTestGate(t, { GATE_CLIENT_TIMEOUT_MS: '3000' })
  g.respond = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(ANSWER.length) })
    res.end(ANSWER)
  }
  const socket = connect({ port: Number(new URL(g.url).port), host: '127.0.0.1', allowHalfOpen: true })
  t.after(() => { socket.destroy() })
  let text = ''
  let ended = false
  let closed = false
  socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
  socket.on('end', () => { ended = true })
  socket.on('close', () => { closed = true })
  socket.on('error', () => {})
  socket.write(`GET /api/v4/projects/200/packages HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\nConnection: close\r\n\r\n${PIPELINED}`)
  const flood = setInterval(() => { if (!socket.destroyed) socket.write(Buffer.alloc(4096, 'j')) }, 5)
  t.after(() => { clearInterval(flood) })
  await eventually(() => ended || closed, { timeoutMs: 30_000, message: 'the gate ends its side after the answer' })
  const [answer, ...more] = answersIn(text)
  assert.equal(more.length, 0, 'one answer')
  assert.equal(answer!.status, 200, answer!.head)
  assert.ok(answer!.body === ANSWER, `GitLab's answer, whole: ${answer!.body.length} bytes of ${ANSWER.length}`)
  // A hang detector, twenty times the client timeout: the gate closes though the client sends on.
  await eventually(() => closed, { timeoutMs: 60_000, message: 'the connection closed' })
  assert.equal(g.seen.length, 1, 'GitLab saw one request')
})

test('a kept-alive request, then a Connection: close request and bytes after it: both answered in full, in order, then the connection closes', async (t) => {
  const held = await heldGate(t)
  const { g, api } = held
  const before = g.logs.length
  const c = await open(api)
  t.after(() => { c.socket.destroy() })
  const get = (n: number, connection: string): string => `GET /api/v4/projects/200/packages?n=${n} HTTP/1.1\r\nHost: x\r\nJob-Token: ${TOKENS.app}\r\n${connection}\r\n`
  c.socket.write(get(1, '') + get(2, 'Connection: close\r\n') + PIPELINED)
  await eventually(() => (linesSince(g, before).some(trailing) && held.held() === 1) || c.closed(), { message: 'the first request held while the bytes after the second are met' })
  held.release()
  // The second request has its turn once the first is answered.
  await eventually(() => held.held() === 1 || c.closed(), { message: 'the second request forwarded' })
  held.release()
  await eventually(c.closed, { timeoutMs: 30_000, message: 'the connection closed' })
  const answers = answersIn(c.text())
  assert.deepEqual(answers.map(a => a.status), [200, 200])
  assert.ok(answers.every(a => a.body === ANSWER), 'both of GitLab\'s answers whole')
  assert.deepEqual(g.seen.map(s => s.url), ['/api/v4/projects/200/packages?n=1', '/api/v4/projects/200/packages?n=2'])
  await eventually(() => linesSince(g, before).filter(l => l.stage !== 'http_parser').length === 2, { message: 'both requests\' lines' })
  assert.equal(linesSince(g, before).filter(trailing).length, 1, 'the bytes after them logged once')
})
