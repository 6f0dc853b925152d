// A client that goes away while the gate reads its body (a form or JSON body it inspects for a
// job token, a GraphQL body) was logged as the gate's own failure: an `unexpected error` line at
// error level and a GATE_INTERNAL_ERROR count, where nothing of the gate's went wrong (an alert on
// internal errors fired on every dropped upload). It is CLIENT_ABORTED now, at info.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

// The configuration API's own bodies (a REST change, a token registration) are read by the
// operator's request: they were answered as a 500 and logged as `configuration API failed`.
const cases: Array<[string, string, string, string]> = [
  ['a form body inspected for a job token', 'POST /api/v4/projects/100/releases', 'application/x-www-form-urlencoded', `JOB-TOKEN: ${TOKENS.app}`],
  ['a GraphQL body', 'POST /api/graphql', 'application/json', `JOB-TOKEN: ${TOKENS.app}`],
  ['a configuration API body', 'PATCH /api/v4/projects/200/job_token_permissions', 'application/json', `PRIVATE-TOKEN: ${ADMIN}`],
  ['a token registration body', `PUT /api/v4/gate/graphql_token_scopes/${'ab'.repeat(32)}`, 'application/json', `PRIVATE-TOKEN: ${ADMIN}`]
]

for (const [name, request, type, credential] of cases) {
  test(`the client gone while the gate reads ${name}: CLIENT_ABORTED, not the gate's error`, async t => {
    const g = credential.startsWith('PRIVATE-TOKEN') ? await adminGate(t) : await startTestGate(t)
    const u = new URL(g.url)
    const socket = connect(Number(u.port), u.hostname)
    t.after(() => socket.destroy())
    await new Promise(resolve => socket.once('connect', resolve))
    socket.write(`${request} HTTP/1.1\r\nHost: gitlab.example\r\nContent-Type: ${type}\r\n${credential}\r\nContent-Length: 50000\r\n\r\n${'a'.repeat(30_000)}`)
    await eventually(async () => total((await scrape(g.healthUrl)).samples, 'job_token_gate_request_body_bytes', { state: 'held' }) > 0, { message: 'the body being read' })
    socket.destroy()
    const line = await eventually(() => g.logs.find(l => l.reason === 'CLIENT_ABORTED'), { message: 'a CLIENT_ABORTED line' })
    assert.equal(line.level, 30)
    assert.deepEqual(g.logs.filter(l => (l.level as number) >= 50 || l.code === 'GATE_INTERNAL_ERROR'), [])
    const samples = (await scrape(g.healthUrl)).samples
    assert.equal(total(samples, 'job_token_gate_requests_total', { reason: 'CLIENT_ABORTED' }), 1)
    assert.equal(total(samples, 'job_token_gate_requests_total', { reason: 'GATE_INTERNAL_ERROR' }), 0)
    assert.equal(total(samples, 'job_token_gate_request_body_bytes', { state: 'held' }), 0)
  })
}
