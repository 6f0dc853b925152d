// A job token on an /api/v4 route that takes none: GitLab never reads one there
// (lib/api/api_guard.rb runs the job token finders only with `job_token_allowed`). In JOB-TOKEN,
// `job_token` or `token` it is ignored and the request runs anonymously; where the personal or
// OAuth token lookup reads (Bearer, PRIVATE-TOKEN, access_token...) it gets 401. The gate strips
// the token and forwards anonymously, so the upstream never sees it, or answers 401; a token in
// a body cannot be stripped and is refused; GATE_JOB_TOKEN_ON_OTHER_ROUTES=refuse refuses all.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireRack } from '../rack/rack-available.ts'

const T = TOKENS.app
const ROUTE = '/api/v4/projects/200/variables'
const basic = (user: string, password: string): string => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
/** `Basic` credentials of the job token with `gap` inserted after the first `at` base64 characters. */
const splitBasic = (at: number, gap: string): string => {
  const encoded = Buffer.from(`gitlab-ci-token:${T}`).toString('base64')
  return `Basic ${encoded.slice(0, at)}${gap}${encoded.slice(at)}`
}

/** Asserts the last forwarded request carried the token nowhere: headers, URL (raw or decoded). */
function assertTokenGone (g: TestGate, before: number): { url: string, headers: Record<string, unknown> } {
  assert.equal(g.seen.length, before + 1, 'forwarded once')
  const seen = g.seen.at(-1)!
  assert.ok(!seen.url.includes(T) && !decodeURIComponent(seen.url.replaceAll('+', ' ')).includes(T), `no token in ${seen.url}`)
  for (const [name, value] of Object.entries(seen.headers)) {
    const text = String(value)
    assert.ok(!text.includes(T), `no token in header ${name}`)
    if (name === 'authorization') assert.fail('Authorization holding the token was removed')
  }
  return { url: seen.url, headers: seen.headers }
}

function lastDecision (g: TestGate, from: number): Record<string, unknown> | undefined {
  return g.logs.slice(from).find(l => l.msg === 'decision')
}

const STRIPPED: Array<{ name: string, target: string, headers?: Record<string, string>, forwarded: string }> = [
  { name: 'JOB-TOKEN header', target: ROUTE, headers: { 'job-token': T }, forwarded: ROUTE },
  { name: 'JOB_TOKEN header (Rack reads it as JOB-TOKEN)', target: ROUTE + '?page=2', headers: { job_token: T }, forwarded: ROUTE + '?page=2' },
  { name: 'job_token parameter', target: `${ROUTE}?job_token=${T}&page=2`, forwarded: ROUTE + '?page=2' },
  { name: 'token parameter', target: `${ROUTE}?page=2&token=${T}`, forwarded: ROUTE + '?page=2' },
  { name: 'job_token[] (Rack reads job_token)', target: `${ROUTE}?job_token[]=${T}&per_page=5`, forwarded: ROUTE + '?per_page=5' },
  { name: 'job_token%5B%5D', target: `${ROUTE}?job_token%5B%5D=${T}`, forwarded: ROUTE },
  { name: 'an escaped name (%6Aob_token)', target: `${ROUTE}?%6Aob_token=${T}&a=1`, forwarded: ROUTE + '?a=1' },
  { name: 'an escaped value', target: `${ROUTE}?job_token=${T.replace('-', '%2D')}&a=1`, forwarded: ROUTE + '?a=1' },
  { name: 'after a ; (Rack splits on ; too)', target: `${ROUTE}?a=1;job_token=${T}`, forwarded: ROUTE + '?a=1' },
  { name: 'Basic gitlab-ci-token', target: ROUTE, headers: { authorization: basic('gitlab-ci-token', T) }, forwarded: ROUTE },
  // Rails decodes everything after the scheme, white space skipped: no word of these decodes to
  // the token, and the gate once forwarded them, logged JOB_TOKEN_STRIPPED.
  { name: 'Basic split by a space', target: ROUTE, headers: { authorization: splitBasic(42, ' ') }, forwarded: ROUTE },
  { name: 'Basic split by a tab and spaces', target: ROUTE, headers: { authorization: splitBasic(7, ' \t ') }, forwarded: ROUTE },
  { name: 'header and parameter together', target: `${ROUTE}?token=${T}`, headers: { 'job-token': T, 'x-custom': 'kept' }, forwarded: ROUTE }
]

test('a job token where GitLab ignores it is stripped and the request forwarded anonymously', async (t) => {
  const g = await startTestGate(t)
  for (const c of STRIPPED) {
    await t.test(c.name, async () => {
      const before = g.seen.length
      const logsBefore = g.logs.length
      const res = await send(g.url, 'GET', c.target, c.headers ?? {})
      assert.equal(res.status, 200, res.text)
      const seen = assertTokenGone(g, before)
      assert.equal(seen.url, c.forwarded)
      if (c.headers?.['x-custom'] !== undefined) assert.equal(seen.headers['x-custom'], 'kept', 'other headers are forwarded')
      const log = lastDecision(g, logsBefore)
      assert.equal(log?.reason, 'JOB_TOKEN_STRIPPED')
      assert.equal(log?.decision, 'no_job_token')
      assert.ok(!JSON.stringify(g.logs.slice(logsBefore)).includes(T), 'no token in the logs')
    })
  }
})

test('Basic credentials split anywhere by white space: Rack and Rails read no job token in what GitLab receives', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const g = await startTestGate(t)
  const length = Buffer.from(`gitlab-ci-token:${T}`).toString('base64').length
  let asked = 0
  for (const gap of [' ', '\t', '  ']) {
    for (let at = 1; at < length; at++) {
      const authorization = splitBasic(at, gap)
      // What Rails reads from the request as the client sent it: the job token.
      const sent = await oracle.ask({ method: 'GET', target: ROUTE, headers: [['Authorization', authorization]], body: Buffer.alloc(0) })
      assert.ok(sent.creds.some(([, value]) => value === T), `Rails reads the token in ${JSON.stringify(authorization)}`)
      const before = g.seen.length
      const res = await send(g.url, 'GET', ROUTE, { authorization })
      assert.equal(res.status, 200, res.text)
      assert.equal(g.seen.length, before + 1)
      const headers = Object.entries(g.seen.at(-1)!.headers).flatMap(([name, value]) => ([] as string[]).concat(value ?? []).map(v => [name, v] as const))
      const received = await oracle.ask({ method: 'GET', target: g.seen.at(-1)!.url, headers, body: Buffer.alloc(0) })
      assert.deepEqual(received.creds.filter(([, value]) => value.includes(T)), [], `${JSON.stringify(authorization)}: GitLab received the token`)
      asked++
    }
  }
  t.diagnostic(`${asked} spellings`)
})

test('a POST with a job token header and a body without one: the header goes, the body is forwarded as sent', async (t) => {
  const g = await startTestGate(t)
  const body = JSON.stringify({ key: 'A', value: 'b' })
  const res = await send(g.url, 'POST', ROUTE, { 'job-token': T, 'content-type': 'application/json' }, body)
  assert.equal(res.status, 200, res.text)
  assertTokenGone(g, 0)
  assert.equal(g.seen[0]!.bytes, Buffer.byteLength(body))
})

const UNAUTHORIZED: Array<{ name: string, target: string, headers?: Record<string, string>, body?: string }> = [
  { name: 'Authorization: Bearer', target: ROUTE, headers: { authorization: `Bearer ${T}` } },
  { name: 'PRIVATE-TOKEN header', target: ROUTE, headers: { 'private-token': T } },
  { name: 'private_token parameter', target: `${ROUTE}?private_token=${T}` },
  { name: 'access_token parameter', target: `${ROUTE}?access_token=${T}` },
  { name: 'bearer_token parameter', target: `${ROUTE}?bearer_token=${T}` },
  { name: 'Bearer beside JOB-TOKEN (the bearer lookup runs first)', target: ROUTE, headers: { authorization: `Bearer ${T}`, 'job-token': T } },
  { name: 'access_token in a form body', target: ROUTE, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${T}` }
]

test('a job token where GitLab looks up personal or OAuth tokens gets 401', async (t) => {
  const g = await startTestGate(t)
  for (const c of UNAUTHORIZED) {
    await t.test(c.name, async () => {
      const res = await send(g.url, c.body === undefined ? 'GET' : 'POST', c.target, c.headers ?? {}, c.body)
      assert.equal(res.status, 401, res.text)
      assert.equal(res.json().message, '401 Unauthorized')
      assert.equal(res.json().code, 'JOB_TOKEN_NOT_ACCEPTED')
      assert.equal(g.seen.length, 0, 'nothing forwarded')
    })
  }
})

test('a job token in a body cannot be stripped: refused, never forwarded', async (t) => {
  const g = await startTestGate(t)
  const bodies: Array<[string, string]> = [
    ['application/x-www-form-urlencoded', `key=A&job_token=${T}`],
    ['application/json', JSON.stringify({ key: 'A', token: T })],
    ['multipart/form-data; boundary=xyz', `--xyz\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${T}\r\n--xyz--\r\n`]
  ]
  for (const [type, body] of bodies) {
    const res = await send(g.url, 'POST', ROUTE, { 'content-type': type }, body)
    assert.equal(res.status, 403, `${type}: ${res.text}`)
    assert.equal(res.json().code, 'JOB_TOKEN_IN_BODY')
  }
  // The same with the token in a header too: the body still holds it.
  const res = await send(g.url, 'POST', ROUTE, { 'content-type': 'application/x-www-form-urlencoded', 'job-token': T }, `job_token=${T}`)
  assert.equal(res.json().code, 'JOB_TOKEN_IN_BODY')
  // A body over the inspection limit streams: it is checked only as it passes, so a token in a
  // header cannot be stripped while one may still come in the body.
  const large = `--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n${'A'.repeat(100_000)}\r\n--xyz--\r\n`
  const streamed = await send(g.url, 'POST', ROUTE, { 'content-type': 'multipart/form-data; boundary=xyz', 'job-token': T }, large)
  assert.equal(streamed.json().code, 'JOB_TOKEN_IN_BODY')
  assert.equal(g.seen.length, 0)
})

test('an unknown or finished job token is still refused (the gate resolves it before stripping)', async (t) => {
  const g = await startTestGate(t)
  const res = await send(g.url, 'GET', ROUTE, { 'job-token': TOKENS.appFinished })
  assert.equal(res.status, 401)
  assert.equal(res.json().code, 'TOKEN_JOB_NOT_RUNNING')
  assert.equal(g.seen.length, 0)
})

test('GATE_JOB_TOKEN_ON_OTHER_ROUTES=refuse keeps the refusal', async (t) => {
  const g = await startTestGate(t, { GATE_JOB_TOKEN_ON_OTHER_ROUTES: 'refuse' })
  const tries: Array<Record<string, string>> = [{ 'job-token': T }, { authorization: `Bearer ${T}` }]
  for (const headers of tries) {
    const res = await send(g.url, 'GET', ROUTE, headers)
    assert.equal(res.status, 403, res.text)
    assert.equal(res.json().code, 'ROUTE_NOT_FOR_JOB_TOKENS')
  }
  assert.equal(g.seen.length, 0)
})

test('forward-auth cannot strip what the front proxy forwards: refused there', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const port = g.gate.authAddress()!.port
  const res = await rawRequest(port, ['GET / HTTP/1.1', 'Host: gate', `X-Original-URI: ${ROUTE}`, 'X-Original-Method: GET', `JOB-TOKEN: ${T}`])
  assert.equal(res.status, 403, res.body)
  assert.equal((JSON.parse(res.body) as { code: string }).code, 'ROUTE_NOT_FOR_JOB_TOKENS')
  const bearer = await rawRequest(port, ['GET / HTTP/1.1', 'Host: gate', `X-Original-URI: ${ROUTE}`, 'X-Original-Method: GET', `Authorization: Bearer ${T}`])
  assert.equal(bearer.status, 401, bearer.body)
})
