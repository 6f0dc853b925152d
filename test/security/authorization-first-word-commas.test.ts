// Regression: on routes that read Basic under any scheme (authenticate_with) the gate decodes what
// follows each comma of Authorization's first word, Envoy's join of lines. Each of those readings
// decodes the rest of the value: two 7,000-comma Authorization lines (and Puma's join of them)
// held one request's CPU for over a second, and a client may send many such requests at once. A
// first word holding more commas than are read is now refused before any credential is collected.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { authorizationTooManyCommas, collectCredentials } from '../../src/identity/credentials.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'

const HELM = '/api/v4/projects/200/packages/helm/stable/index.yaml'
const param = Buffer.from(`helm:${TOKENS.tools}`).toString('base64')
const commas = (n: number): string => `${Array(n).fill('a').join(',')},${param}`

test('Authorization lines of thousands of commas are refused at once, in the proxy and in forward-auth', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const ports = [Number(new URL(g.url).port), g.gate.authAddress()!.port]
  const line = `Authorization: Foo${','.repeat(7000)}${param}`
  // The answer was the same before (the whole value is a credential of its own beside the job
  // token), after hundreds of ms of CPU for each of these eight: the gate runs in this process, so
  // its CPU time is counted here, which a busy machine does not inflate as it does the clock.
  const cpu = process.cpuUsage()
  const answers = await Promise.all(ports.flatMap(port => [1, 2, 3, 4].map(() => rawRequest(port, [`GET ${HELM} HTTP/1.1`, line, line]))))
  const used = process.cpuUsage(cpu)
  for (const answer of answers) {
    assert.equal(answer.status, 401, answer.body)
    assert.equal(JSON.parse(answer.body).code, 'CREDENTIAL_AMBIGUOUS')
  }
  const ms = (used.user + used.system) / 1000
  t.diagnostic(`${Math.round(ms)} ms of CPU`)
  assert.ok(ms < 1500, `${Math.round(ms)} ms of CPU for eight refusals (tens of ms with the limit, seconds without)`)
  // Envoy's join of twenty lines: more than are read, refused alike.
  const many = await send(`http://127.0.0.1:${ports[1]}`, 'GET', HELM, { authorization: commas(20) })
  assert.equal(many.json().code, 'CREDENTIAL_AMBIGUOUS', many.text)
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('up to the limit every comma of the first word is read', () => {
  const request = (authorization: string) => ({ canonical: { method: 'GET', path: HELM, query: '' }, headers: { authorization }, rawHeaders: ['Authorization', authorization], route: null as CatalogRoute | null })
  assert.equal(authorizationTooManyCommas(request(commas(16))), false)
  assert.ok(collectCredentials(request(commas(16))).some(c => c.secret === TOKENS.tools))
  assert.equal(authorizationTooManyCommas(request(commas(17))), true)
})
