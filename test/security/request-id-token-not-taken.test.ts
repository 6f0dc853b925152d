// Finding: a trusted peer's X-Request-Id is taken as the request's id, written into every log
// line of the request, its answer and the request sent to GitLab. A proxy that passes the
// client's id on as its own (ingress-nginx does) passes whatever the client wrote there, and the
// id's characters (letters, digits, `._:-`) hold any GitLab token and any JSON Web Token: a token
// sent as X-Request-Id was written whole into the decision log.
//
// Now an id that holds something token-shaped is not taken: the request gets an id of its own.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GATE_REQUEST_ID, startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const JWT = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"project_path:acme/app"}').toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`

test('an X-Request-Id holding a token is never taken as the request id', async t => {
  const g = await startTestGate(t)
  const path = '/api/v4/projects/200/packages'
  for (const id of [TOKENS.lib, 'glpat-pastedasrequestid01', `req:${JWT}`, 'gldt-abcdefgh12345678']) {
    const res = await send(g.url, 'GET', path, { 'job-token': TOKENS.app, 'x-request-id': id })
    assert.equal(res.status, 200)
    assert.match(String(g.logs.filter(l => l.msg === 'decision').at(-1)!.request_id), GATE_REQUEST_ID, `${id}: a new id is logged`)
    assert.match(String(g.seen.at(-1)!.headers['x-request-id']), GATE_REQUEST_ID, `${id}: and sent to GitLab`)
    // A refusal answers its id.
    const refused = await send(g.url, 'GET', '/api/v4/projects/300/packages', { 'job-token': TOKENS.app, 'x-request-id': id })
    assert.equal(refused.status, 403)
    assert.match(String(refused.headers['x-request-id']), GATE_REQUEST_ID, `${id}: a new id is answered`)
    assert.match(String(refused.json().request_id), GATE_REQUEST_ID)
  }
  const text = g.logs.map(l => JSON.stringify(l)).join('\n')
  assert.ok(!/glcbt-|glpat-|gldt-|eyJ/.test(text), text)
  // A well-formed id of no token's shape is still taken, as before.
  const res = await send(g.url, 'GET', '/api/v4/projects/300/packages', { 'job-token': TOKENS.app, 'x-request-id': 'req-7f3a:1' })
  assert.equal(res.headers['x-request-id'], 'req-7f3a:1')
  assert.ok(g.logs.some(l => l.request_id === 'req-7f3a:1' && l.msg === 'decision'))
})
