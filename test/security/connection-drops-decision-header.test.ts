// Finding: the gate read a POST with `Content-Type: text/plain` as no form, then dropped
// Content-Type on the way upstream because `Connection: content-type` named it (hop-by-hop).
// GitLab received a POST without a type, which Rack parses as a form, and read `job_token=`
// from it: the job token of a project that is not allowlisted went through unchecked. A header
// the decision depends on is never dropped: naming one in Connection is refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { rawRequest } from '../helpers/http.ts'

// other/tools (300) is not on acme/lib's (200) allowlist.
const PATH = '/api/v4/projects/200/packages/generic/pkg/1.0/file.txt'
const port = (url: string): number => Number(new URL(url).port)

for (const [name, lines, body] of [
  ['Connection: content-type on a text/plain POST carrying job_token=', ['POST /api/v4/projects/200/releases HTTP/1.1', 'Content-Type: text/plain', 'Connection: content-type'], `job_token=${TOKENS.tools}&tag_name=v1`],
  ['Connection: Content-Type among other tokens', ['POST /api/v4/projects/200/releases HTTP/1.1', 'Content-Type: text/plain', 'Connection: keep-alive, Content-Type'], `job_token=${TOKENS.tools}`],
  ['Connection: job-token', [`PUT ${PATH} HTTP/1.1`, `JOB-TOKEN: ${TOKENS.tools}`, 'Connection: job-token'], 'data'],
  ['Connection: JOB_TOKEN (Rack reads _ as -)', [`PUT ${PATH} HTTP/1.1`, `JOB-TOKEN: ${TOKENS.tools}`, 'Connection: JOB_TOKEN'], 'data'],
  ['Connection: authorization', [`PUT ${PATH} HTTP/1.1`, `Authorization: Bearer ${TOKENS.tools}`, 'Connection: authorization'], 'data'],
  ['Connection: private-token', [`GET ${PATH} HTTP/1.1`, `PRIVATE-TOKEN: ${TOKENS.tools}`, 'Connection: private-token'], ''],
  ['Connection: content-length', [`PUT ${PATH} HTTP/1.1`, `JOB-TOKEN: ${TOKENS.app}`, 'Connection: content-length'], 'data'],
  ['Connection: content-encoding', [`PUT ${PATH} HTTP/1.1`, `JOB-TOKEN: ${TOKENS.app}`, 'Connection: content-encoding'], 'data'],
  ['Connection: x-http-method-override', [`POST ${PATH} HTTP/1.1`, 'X-HTTP-Method-Override: DELETE', 'Connection: x-http-method-override'], '']
] as const) {
  test(`${name}: refused with 400, nothing reaches the upstream`, async (t) => {
    const g = await startTestGate(t)
    const answer = await rawRequest(port(g.url), lines, body)
    assert.equal(answer.status, 400, answer.body)
    assert.equal(JSON.parse(answer.body).code, 'CONNECTION_DROPS_DECISION_HEADER')
    assert.equal(g.seen.length, 0)
  })
}

test('ordinary Connection headers still pass', async (t) => {
  const g = await startTestGate(t)
  for (const connection of ['keep-alive', 'close', 'Keep-Alive, TE', 'x-custom-hop']) {
    const answer = await rawRequest(port(g.url), [`GET ${PATH} HTTP/1.1`, `JOB-TOKEN: ${TOKENS.app}`, `Connection: ${connection}`])
    assert.notEqual(answer.status, 400, `${connection}: ${answer.body}`)
  }
  assert.equal(g.seen.length, 4)
})
