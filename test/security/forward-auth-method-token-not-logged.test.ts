// Finding: the forward-auth listener takes the request's method from X-Original-Method or
// X-Forwarded-Method, which the front proxy fills with the client's request line (Traefik passes
// any token there, lower case and digits included), and the decision log wrote it whole. A token
// sent where the method goes (`curl -X "$TOKEN" ...`, arguments in the wrong order) was written
// into the gate's log, where a token pasted into the path is written `[token]`.
//
// Now a method that is none of HTTP's is written `[other]`, whatever its shape (a token without a
// recognisable one too), in both writers of the line (the direct one and pino's, which a logger
// with options of its own uses).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const PAT = 'glpat-sent1as2the3method45'
/** An OAuth access token: 64 hex digits, no shape the log could recognise. */
const OAUTH = 'a1b2c3d4'.repeat(8)
const JWT = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"project_path:acme/app"}').toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`

test('a token given as the original method of a forward-auth check is never written to the log', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const path = '/api/v4/projects/200/packages'
  const asked: Array<Record<string, string>> = [
    { 'x-original-method': PAT, 'x-original-uri': path, 'job-token': TOKENS.app },
    { 'x-forwarded-method': TOKENS.lib, 'x-forwarded-uri': path, 'job-token': TOKENS.app },
    { 'x-original-method': JWT, 'x-original-uri': path },
    { 'x-original-method': `acme~${TOKENS.web}`, 'x-original-uri': path },
    { 'x-original-method': OAUTH, 'x-original-uri': path },
    { 'x-original-method': 'GET', 'x-original-uri': path, 'job-token': TOKENS.app },
    { 'x-forwarded-method': 'put', 'x-forwarded-uri': path, 'job-token': TOKENS.app }
  ]
  for (const headers of asked) await send(auth, 'GET', '/', headers)
  const decisions = g.logs.filter(l => l.msg === 'decision')
  assert.equal(decisions.length, asked.length, 'one line per check')
  const text = g.logs.map(l => JSON.stringify(l)).join('\n')
  for (const secret of [PAT, TOKENS.lib, JWT, TOKENS.web, 'sent1as2the3method', OAUTH]) assert.ok(!text.includes(secret), `the log holds ${secret}`)
  assert.deepEqual(decisions.map(l => l.method), ['[other]', '[other]', '[other]', '[other]', '[other]', 'GET', 'put'])
})
