// Rack::MethodOverride through a real gate: the decision is taken on the route GitLab routes a
// POST to (its X-HTTP-Method-Override or `_method`), and the request is forwarded as sent.
// acme/platform/app's jobs (TOKENS.app) may only read packages of acme/lib (project 200).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'

const PACKAGE = '/api/v4/projects/200/packages/5'
const FORM = 'application/x-www-form-urlencoded'

interface Case {
  readonly name: string
  readonly headers: Record<string, string>
  readonly body?: string
  readonly status: number
  readonly code?: string
  /** The route the decision log names. */
  readonly routeId?: string
}

const cases: Case[] = [
  {
    name: 'X-HTTP-Method-Override: DELETE is decided as DELETE (admin_packages)',
    headers: { 'job-token': TOKENS.app, 'x-http-method-override': 'DELETE' },
    status: 403,
    code: 'MISSING_POLICIES',
    routeId: 'delete_projects_id_packages_package_id'
  },
  {
    name: '_method=delete in a form body is decided as DELETE',
    headers: { 'content-type': FORM },
    body: `_method=delete&job_token=${TOKENS.app}`,
    status: 403,
    code: 'MISSING_POLICIES',
    routeId: 'delete_projects_id_packages_package_id'
  },
  {
    name: '_method=GET is decided as GET (read_packages) and forwarded as the POST it is',
    headers: { 'content-type': FORM, 'job-token': TOKENS.app },
    body: '_method=GET',
    status: 200,
    routeId: 'get_projects_id_packages_package_id'
  },
  {
    name: 'a POST without an override matches no route that takes job tokens: its token is stripped',
    headers: { 'job-token': TOKENS.app },
    status: 200
  },
  {
    name: 'one X-HTTP-Method-Override line naming two methods names none (Rack upcases "GET, GET"): a POST, its token stripped',
    headers: { 'job-token': TOKENS.app, 'x-http-method-override': 'GET, GET' },
    status: 200
  }
]

test('Rack::MethodOverride through the gate: decided on the method GitLab routes', async (t) => {
  const g = await startTestGate(t)
  for (const c of cases) {
    await t.test(c.name, async () => {
      const before = g.seen.length
      const logsBefore = g.logs.length
      const res = await send(g.url, 'POST', PACKAGE, c.headers, c.body)
      assert.equal(res.status, c.status, res.text)
      if (c.code !== undefined) {
        assert.equal(res.json().code, c.code)
        assert.equal(g.seen.length, before, 'the upstream never saw a refused request')
      } else {
        assert.equal(g.seen.length, before + 1)
        const seen = g.seen.at(-1)!
        assert.equal(seen.method, 'POST', 'forwarded with its own method')
        assert.equal(seen.bytes, Buffer.byteLength(c.body ?? ''), 'and its own body')
      }
      const log = g.logs.slice(logsBefore).find(l => l.msg === 'decision')
      if (c.routeId !== undefined) assert.equal(log?.route_id, c.routeId)
    })
  }
})

test('repeated X-HTTP-Method-Override lines are refused: Puma joins them, another server keeps one', async (t) => {
  const g = await startTestGate(t)
  const port = Number(new URL(g.url).port)
  const res = await rawRequest(port, [`POST ${PACKAGE} HTTP/1.1`, `JOB-TOKEN: ${TOKENS.app}`, 'X-HTTP-Method-Override: GET', 'X_HTTP_METHOD_OVERRIDE: GET'])
  assert.equal(res.status, 400, res.body)
  assert.equal((JSON.parse(res.body) as { code: string }).code, 'METHOD_OVERRIDE_AMBIGUOUS')
  assert.equal(g.seen.length, 0)
})
