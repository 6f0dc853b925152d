// Forward-auth refused every form, JSON or multipart body it could not see on a route that takes
// job tokens, so behind nginx a Helm, NuGet or RPM push failed whatever credential the job showed.
// Routes that declare `authenticate_with` read credentials from the headers and the query string
// only (Gitlab::APIAuthentication::TokenLocator), never a body: there a hidden body holds nothing
// GitLab authenticates, and the visible credential is decided. A form POST whose `_method` could
// move it to another route of its path is still refused, as is a hidden body on every other
// route that takes job tokens (GitLab reads `access_token` and `job_token` from bodies there).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

const basic = (user: string, token: string): string => `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`
const MULTIPART = { 'content-type': 'multipart/form-data; boundary=b0' }
const PART = '--b0\r\nContent-Disposition: form-data; name="chart"; filename="c.tgz"\r\n\r\nchart bytes\r\n--b0--\r\n'
// acme/lib (200) with its own job's token (self access); other/tools (300) allowlists nobody.
const HELM = '/api/v4/projects/200/packages/helm/api/stable/charts'
const NUGET = '/api/v4/projects/200/packages/nuget'

test('the decision endpoint: a hidden body on an authenticate_with route is decided on the visible credential', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (method: string, uri: string, headers: Record<string, string>): ReturnType<typeof send> =>
    send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, 'x-original-content-length': '4096', ...headers })

  for (const [method, uri, credential] of [
    ['POST', HELM, { authorization: basic('anyone', TOKENS.lib) }],
    ['PUT', NUGET, { 'x-nuget-apikey': TOKENS.lib }]
  ] as const) {
    const own = await ask(method, uri, { ...MULTIPART, ...credential })
    assert.equal(own.status, 200, `${method} ${uri}: ${own.text}`)
    const refused = await ask(method, uri.replace('/200/', '/300/'), { ...MULTIPART, ...credential })
    assert.equal(refused.status, 403, `${uri} of a project that allowlists nobody: ${refused.text}`)
    assert.notEqual(refused.json().code, 'BODY_NOT_VISIBLE', 'decided on the visible job token')
  }

  // A form or multipart POST whose `_method` could move it to another route of its path: RPM's
  // upload path is also `GET /projects/:id/packages/:package_id` to Grape, and POST
  // /debian_distributions shares its path with GET's list.
  const rpm = await ask('POST', '/api/v4/projects/200/packages/rpm', { ...MULTIPART, authorization: basic('gitlab-ci-token', TOKENS.lib) })
  assert.equal(rpm.status, 403, rpm.text)
  assert.equal(rpm.json().code, 'BODY_NOT_VISIBLE')
  const DISTRIBUTIONS = '/api/v4/projects/200/debian_distributions'
  const form = await ask('POST', DISTRIBUTIONS, { 'content-type': 'application/x-www-form-urlencoded', 'job-token': TOKENS.lib })
  assert.equal(form.status, 403, form.text)
  assert.equal(form.json().code, 'BODY_NOT_VISIBLE')
  assert.equal((await ask('POST', DISTRIBUTIONS, { 'content-type': 'application/json', 'job-token': TOKENS.lib })).status, 200, 'Rack reads no _method from JSON')

  // A route without authenticate_with reads body credentials: PyPI's upload (access_token=, job_token=).
  const pypi = await ask('POST', '/api/v4/projects/200/packages/pypi', { ...MULTIPART, authorization: basic('gitlab-ci-token', TOKENS.lib) })
  assert.equal(pypi.status, 403, pypi.text)
  assert.equal(pypi.json().code, 'BODY_NOT_VISIBLE')
})

test('behind the shipped nginx: Helm and NuGet pushes with a job token in their headers reach GitLab', { skip: needsNginx }, async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
  const helm = await send(base, 'POST', HELM, { ...MULTIPART, authorization: basic('anyone', TOKENS.lib) }, PART)
  assert.equal(helm.status, 200, helm.text)
  const nuget = await send(base, 'PUT', NUGET, { ...MULTIPART, 'x-nuget-apikey': TOKENS.lib }, PART)
  assert.equal(nuget.status, 200, nuget.text)
  const other = await send(base, 'POST', HELM.replace('/200/', '/300/'), { ...MULTIPART, authorization: basic('anyone', TOKENS.lib) }, PART)
  assert.equal(other.status, 403, other.text)
  assert.deepEqual(g.seen.filter(s => s.url.startsWith('/api/')).map(s => [s.method, s.url, s.bytes]), [['POST', HELM, PART.length], ['PUT', NUGET, PART.length]])
})
