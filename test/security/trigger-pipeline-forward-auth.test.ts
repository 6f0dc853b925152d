// The pipeline trigger API behind forward-auth. GitLab's handler reads `params[:token]`, and a
// body parameter outranks the query's: a trigger with a body the gate cannot see (`curl --form`,
// a webhook calling the trigger URL with its JSON event payload) may hold a job token there, so it
// is refused (BODY_NOT_VISIBLE) whatever the query's `token` is, a trigger token included. Before
// the route was in the catalog such a request was answered 200, and a job token in the body
// reached GitLab undecided. A trigger without a body, or with the body sent to the gate (Traefik
// forwardBody, Envoy with_request_body), is decided as in proxy mode (docs/gitlab-rules.md, "The
// pipeline trigger API").

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const TRIGGER = 'glptt-0123456789abcdef0123'
const LIB = '/api/v4/projects/200/trigger/pipeline'
const WEBHOOK = `/api/v4/projects/200/ref/main/trigger/pipeline?token=${TRIGGER}`
const JSON_TYPE = { 'content-type': 'application/json' }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

test('nginx auth_request: a trigger with a body is refused, a trigger token\'s too; one without is decided', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (uri: string, headers: Record<string, string>, length: string): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': uri, 'x-original-content-length': length, ...headers })

  const hidden: Array<[string, string, Record<string, string>]> = [
    ['a webhook\'s JSON payload', WEBHOOK, JSON_TYPE],
    ['curl --form', LIB, { 'content-type': 'multipart/form-data; boundary=xyz' }],
    ['a form', `${LIB}?token=${TRIGGER}&ref=main`, FORM]
  ]
  for (const [name, uri, headers] of hidden) {
    const answer = await ask(uri, headers, '300')
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'BODY_NOT_VISIBLE', name)
  }
  // Everything in the query string, no body: the trigger token goes to GitLab, job tokens are decided.
  assert.equal((await ask(`${LIB}?token=${TRIGGER}&ref=main&variables[A]=b`, {}, '0')).status, 200)
  assert.equal((await ask(`${LIB}?token=${TOKENS.web}&ref=main`, {}, '0')).status, 200)
  const outside = await ask(`${LIB}?token=${TOKENS.tools}&ref=main`, {}, '0')
  assert.equal(outside.status, 403, outside.text)
  assert.equal(outside.json().code, 'NOT_ALLOWLISTED')
})

test('a proxy that sends the body: the body is read, a trigger token passes, a job token is decided', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const payload = JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main' })
  assert.equal((await send(auth, 'POST', WEBHOOK, JSON_TYPE, payload)).status, 200)
  const smuggled = await send(auth, 'POST', WEBHOOK, JSON_TYPE, JSON.stringify({ token: TOKENS.tools }))
  assert.equal(smuggled.status, 401, smuggled.text)
  assert.equal(smuggled.json().code, 'CREDENTIAL_AMBIGUOUS')
  const job = await send(auth, 'POST', LIB, FORM, `ref=main&token=${TOKENS.tools}`)
  assert.equal(job.status, 403, job.text)
  assert.equal(job.json().code, 'NOT_ALLOWLISTED')
})
