// GitLab Runner's job routes (lib/api/ci/runner.rb): the runner reports a job's state, log and
// artifacts with that job's token, which GitLab checks against the job in the URL. Behind the
// gate they must reach GitLab as sent, job token and body included, even for a job GitLab has
// stopped (its 403 and Job-Status header tell the runner to abort); the gate's allowlist has
// nothing to decide there. A POST's method override still moves it to the route GitLab runs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

function decisionOf (logs: ReadonlyArray<Record<string, unknown>>, from: number): Record<string, unknown> | undefined {
  return logs.slice(from).find(l => l.msg === 'decision')
}

test('runner job routes reach GitLab as sent, token and body included', async (t) => {
  const envs: Array<Record<string, string>> = [{}, { GATE_JOB_TOKEN_ON_OTHER_ROUTES: 'refuse' }]
  for (const env of envs) {
    const g = await startTestGate(t, env)
    const cases: Array<{ method: string, path: string, headers: Record<string, string>, body: string }> = [
      { method: 'PUT', path: '/api/v4/jobs/1', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKENS.app, state: 'success', exit_code: 0 }) },
      { method: 'PATCH', path: '/api/v4/jobs/1/trace', headers: { 'job-token': TOKENS.app, 'content-range': '0-10', 'content-type': 'text/plain' }, body: 'job log ok\n' },
      { method: 'POST', path: '/api/v4/jobs/1/artifacts/authorize?artifact_format=zip&artifact_type=archive', headers: { 'job-token': TOKENS.app }, body: '' },
      {
        method: 'POST',
        path: '/api/v4/jobs/1/artifacts?artifact_format=zip&artifact_type=archive&expire_in=1d',
        headers: { 'job-token': TOKENS.app, 'content-type': 'multipart/form-data; boundary=b0' },
        body: '--b0\r\nContent-Disposition: form-data; name="file"; filename="artifacts.zip"\r\nContent-Type: application/zip\r\n\r\nPK\x03\x04 zip bytes\r\n--b0--\r\n'
      }
    ]
    for (const c of cases) {
      const before = g.seen.length
      const logsBefore = g.logs.length
      const res = await send(g.url, c.method, c.path, c.headers, c.body)
      assert.equal(res.status, 200, `${c.method} ${c.path}: ${res.text}`)
      const seen = g.seen.at(-1)!
      assert.equal(g.seen.length, before + 1)
      assert.equal(seen.method, c.method)
      assert.equal(seen.url, c.path, 'the query, token included, as sent')
      assert.equal(seen.sha256, createHash('sha256').update(c.body).digest('hex'), 'the body as sent')
      if (c.headers['job-token'] !== undefined) assert.equal(seen.headers['job-token'], TOKENS.app)
      const line = await eventually(() => decisionOf(g.logs, logsBefore))
      assert.equal(line.decision, 'deferred', `${c.method} ${c.path}`)
      assert.equal(line.reason, 'RUNNER_JOB_ROUTE')
    }
  }
})

test('a job GitLab has stopped hears GitLab\'s own answer on its update and log routes', async (t) => {
  const g = await startTestGate(t)
  g.respond = (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json', 'job-status': 'canceled' })
    res.end('{"message":"403 Forbidden  - Job is not processing on runner"}')
  }
  // The fake GitLab no longer resolves this token (its job has finished): the gate would answer
  // 401 on a route it decides.
  const update = await send(g.url, 'PUT', '/api/v4/jobs/2', { 'content-type': 'application/json' }, JSON.stringify({ token: TOKENS.appFinished, state: 'failed' }))
  assert.equal(update.status, 403)
  assert.equal(update.headers['job-status'], 'canceled')
  const trace = await send(g.url, 'PATCH', '/api/v4/jobs/2/trace', { 'job-token': TOKENS.appFinished, 'content-range': '0-1' }, 'ab')
  assert.equal(trace.status, 403)
  assert.equal(trace.headers['job-status'], 'canceled')
  assert.equal(g.seen.length, 2, 'both reached GitLab')
})

test('a POST moved by its method override is decided on the route GitLab runs', async (t) => {
  const g = await startTestGate(t)
  // Rack routes this as GET /jobs/3/artifacts: another job's artifacts, decided as such, not
  // passed on as the runner's upload.
  const logsBefore = g.logs.length
  const moved = await send(g.url, 'POST', '/api/v4/jobs/3/artifacts', { 'job-token': TOKENS.app, 'x-http-method-override': 'GET' }, '')
  const line = await eventually(() => decisionOf(g.logs, logsBefore))
  assert.notEqual(line.reason, 'RUNNER_JOB_ROUTE', JSON.stringify(line))
  assert.equal(line.route_id, 'get_jobs_id_artifacts')
  assert.equal(line.reason, 'PROJECT_NOT_IN_URL', 'job 3 is not of the token\'s pipeline: left to GitLab as on the GET route')
  assert.equal(moved.status, 200)
  // A form body's `_method=PUT` routes a POST to the job's update, which GitLab checks itself.
  const put = await send(g.url, 'POST', '/api/v4/jobs/1', { 'content-type': 'application/x-www-form-urlencoded' }, `_method=PUT&token=${TOKENS.app}&state=success`)
  assert.equal(put.status, 200, put.text)
  assert.equal(g.seen.at(-1)!.method, 'POST', 'forwarded as sent')
})

test('paths that are not the runner\'s job routes are not passed on', async (t) => {
  const g = await startTestGate(t)
  const cases = [
    // A format suffix, another method, another path: routes that take no job token.
    { method: 'PUT', path: '/api/v4/jobs/1.json' },
    { method: 'POST', path: '/api/v4/jobs/1' },
    { method: 'PUT', path: '/api/v4/jobs/1/trace' },
    { method: 'PATCH', path: '/api/v4/jobs/1' },
    { method: 'DELETE', path: '/api/v4/jobs/1/artifacts' },
    { method: 'PUT', path: '/api/v4/jobs/1/extra' }
  ]
  for (const c of cases) {
    const logsBefore = g.logs.length
    const res = await send(g.url, c.method, c.path, { 'content-type': 'application/json' }, JSON.stringify({ token: TOKENS.app }))
    assert.equal(res.status, 403, `${c.method} ${c.path}: a job token in the body of a route that takes none`)
    assert.equal(res.json().code, 'JOB_TOKEN_IN_BODY')
    assert.notEqual((await eventually(() => decisionOf(g.logs, logsBefore))).reason, 'RUNNER_JOB_ROUTE')
  }
})

test('forward-auth lets the runner\'s job routes through', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (method: string, uri: string, headers: Record<string, string>): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, ...headers })
  assert.equal((await ask('PUT', '/api/v4/jobs/1', {})).status, 200)
  assert.equal((await ask('PATCH', '/api/v4/jobs/2/trace', { 'job-token': TOKENS.appFinished })).status, 200)
  assert.equal((await ask('POST', '/api/v4/jobs/1/artifacts/authorize', { 'job-token': TOKENS.app })).status, 200)
})
