// Forward-auth took a POST that matched no route taking job tokens as a request GitLab reads no
// job token on, even with a form or multipart body the gate could not see. Rack::MethodOverride
// routes a POST as the `_method` of that body: `POST /projects/300/packages/npm/foo` with
// `_method=PUT&job_token=<job token>` is npm's publish to GitLab, and `POST
// /projects/300/deployments/5` the update of a deployment, each authenticated by the body's job
// token while the gate answered 200 (no job token, no route). Now a POST with a hidden body that
// Rack reads `_method` from is refused (BODY_NOT_VISIBLE) where some method of its path is a
// route that takes job tokens, except where that route reaches only the visible job token's own
// job (a runner's artifact upload).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const BODY = `_method=PUT&job_token=${TOKENS.app}&status=success`
// Project 300 (other/tools) lists nobody; there is no POST route at these paths, only a PUT.
const MOVED = ['/api/v4/projects/300/deployments/5', '/api/v4/projects/300/packages/npm/foo']

test('behind the shipped nginx: a POST a hidden _method routes to a job-token route is refused', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  for (const path of MOVED) {
    const answer = await send(base, 'POST', path, FORM, BODY)
    assert.equal(answer.status, 403, `${path}: ${answer.text}`)
  }
  assert.equal(g.seen.filter(s => MOVED.includes(s.url)).length, 0, 'nothing reached GitLab')
  assert.equal(g.logs.filter(l => l.reason === 'BODY_NOT_VISIBLE').length, MOVED.length)
})

test('the decision endpoint: hidden bodies of POSTs that _method could move', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (uri: string, headers: Record<string, string>, length = '40'): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': 'POST', 'x-original-uri': uri, 'x-original-content-length': length, ...headers })
  const multipart = { 'content-type': 'multipart/form-data; boundary=b0' }
  // Multipart to Go (Workhorse writes its parts again for Rails), no type Rack parses: a
  // no-break space before it, as UTF-8.
  const goMultipart = { 'content-type': Buffer.from('\u00a0multipart/form-data; boundary=b0').toString('latin1') }
  for (const uri of MOVED) {
    for (const headers of [FORM, multipart, goMultipart, {}]) {
      const answer = await ask(uri, headers)
      assert.equal(answer.status, 403, `${uri} ${JSON.stringify(headers)}: ${answer.text}`)
      assert.equal(answer.json().code, 'BODY_NOT_VISIBLE')
    }
    // Rack reads no `_method` from JSON, and there is none without a body.
    assert.equal((await ask(uri, { 'content-type': 'application/json' })).status, 200, `${uri} JSON`)
    assert.equal((await ask(uri, FORM, '0')).status, 200, `${uri} without a body`)
  }
  // A path no method of which takes job tokens is none of the gate's business.
  assert.equal((await ask('/api/v4/projects/300/labels', FORM)).status, 200)
  // A runner's artifact upload with its own job's token: `_method=GET` could only make it the
  // download of that same job's artifacts. Another job's upload could be moved to another job's.
  assert.equal((await ask('/api/v4/jobs/1/artifacts?artifact_format=zip', { ...multipart, 'job-token': TOKENS.app })).status, 200)
  const other = await ask('/api/v4/jobs/3/artifacts', { ...multipart, 'job-token': TOKENS.app })
  assert.equal(other.status, 403, other.text)
  assert.equal(other.json().code, 'BODY_NOT_VISIBLE')
  assert.equal((await ask('/api/v4/jobs/1/artifacts', multipart)).status, 403, 'no job token to hold it to')
})
