// Forward-auth mode: the decision endpoint on its own, then behind a real nginx with the
// shipped deploy/nginx/job-token-gate.conf.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { GATE_REQUEST_ID, startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

const job = { 'job-token': TOKENS.app }

async function authGate (t: Parameters<typeof startTestGate>[0], env: Record<string, string> = {}): Promise<{ auth: string } & Awaited<ReturnType<typeof startTestGate>>> {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', ...env })
  return { ...g, auth: `http://127.0.0.1:${g.gate.authAddress()!.port}` }
}

test('forward-auth answers 200 or the same 401/403 bodies, and never proxies', async (t) => {
  const g = await authGate(t)
  const ask = (method: string, uri: string, headers: Record<string, string> = {}): ReturnType<typeof send> =>
    send(g.auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, ...headers })
  const allowed = await ask('GET', '/api/v4/projects/200/packages', job)
  assert.equal(allowed.status, 200)
  assert.equal(allowed.headers['x-job-token-gate-decision'], 'allow')
  assert.equal(allowed.headers['x-job-token-gate-reason'], 'POLICIES_GRANTED')
  assert.match(String(allowed.headers['x-request-id']), GATE_REQUEST_ID)
  // No body: nginx keeps the connection only when nothing of the answer is left unread.
  assert.equal(allowed.headers['content-length'], '0')
  assert.equal(allowed.text, '')
  const missing = await ask('PUT', '/api/v4/projects/200/packages/npm/foo', job)
  assert.equal(missing.status, 403)
  assert.equal(missing.json().message, '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permission is required: admin_packages.')
  const finished = await ask('GET', '/api/v4/projects/200/packages/maven/a/b/1/b.jar', { 'job-token': TOKENS.appFinished })
  assert.equal(finished.status, 401)
  assert.equal(finished.headers['www-authenticate'], 'Basic realm="GitLab Packages Registry"')
  const query = await ask('PUT', '/api/v4/projects/200/packages/npm/foo?job_token=' + TOKENS.app)
  assert.equal(query.status, 403, 'a job token in the original query string is found')
  // Traefik's spelling.
  const traefik = await send(g.auth, 'GET', '/', { 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/api/v4/projects/200/deployments', ...job })
  assert.equal(traefik.status, 403)
  // Envoy sends the original method and path as its own.
  const envoy = await send(g.auth, 'PUT', '/api/v4/projects/200/packages/npm/foo', job)
  assert.equal(envoy.status, 403)
  assert.equal((await send(g.auth, 'GET', '/api/v4/projects/200/packages', job)).status, 200)
  assert.equal(g.seen.length, 0, 'nothing was proxied')
})

test('forward-auth refuses what the gate must answer itself: its configuration API and GraphQL', async (t) => {
  const g = await authGate(t)
  const ask = (method: string, uri: string): ReturnType<typeof send> =>
    send(g.auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': uri, 'private-token': 'glpat-maintainer' })
  for (const [method, uri] of [
    ['PATCH', '/api/v4/projects/200/job_token_scope'],
    ['PATCH', '/api/v4/projects/200/job_token_scope.json'],
    ['POST', '/api/v4/projects/acme%2Flib/job%5Ftoken%5Fscope/allowlist'],
    ['DELETE', '/api/v4//projects/200/job_token_scope/groups_allowlist/10'],
    ['GET', '/api/v4/projects/200/job_token_permissions'],
    ['POST', '/api/graphql'],
    ['GET', '/api/graphql?query=mutation%7B%7D'],
    ['POST', '/api/graphql.json'],
    // Rails reads an escaped dot as a format (`.%2E`: format "."), GraphQL still.
    ['POST', '/api/graphql.%2E'],
    ['GET', '/api/glql.%2e%2E?query=mutation%7B%7D'],
    ['POST', '/api/glql']
  ] as const) {
    const answer = await ask(method, uri)
    assert.equal(answer.status, 403, `${method} ${uri}: ${answer.text}`)
    assert.equal(answer.json().code, 'FORWARD_AUTH_GATE_ENDPOINT')
  }
  assert.equal((await ask('GET', '/api/v4/projects/200/job_token_scopes')).status, 200, 'a path that only looks alike is not the gate\'s')
})

test('forward-auth: original-request headers only from trusted peers; hidden bodies', async (t) => {
  const untrusted = await authGate(t, { GATE_TRUSTED_PROXIES: '192.0.2.1' })
  const res = await send(untrusted.auth, 'GET', '/', { 'x-original-method': 'GET', 'x-original-uri': '/api/v4/projects/200/packages', ...job })
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'FORWARD_AUTH_UNTRUSTED')

  const g = await authGate(t)
  const form = { 'x-original-method': 'POST', 'x-original-uri': '/api/v4/projects/100/deployments', 'content-type': 'application/x-www-form-urlencoded', 'x-original-content-length': '40' }
  const hidden = await send(g.auth, 'GET', '/', { ...form, ...job })
  assert.equal(hidden.status, 403, 'a job token may hide in the body nginx does not send')
  assert.equal(hidden.json().code, 'BODY_NOT_VISIBLE')
  assert.equal((await send(g.auth, 'GET', '/', form)).status, 403, 'no visible credential: the body may hold one')
  const pat = await send(g.auth, 'GET', '/', { ...form, 'private-token': 'glpat-user' })
  assert.equal(pat.status, 403, 'a visible PAT: GitLab reads a body\'s access_token=<job token> before it')
  assert.equal(pat.json().code, 'BODY_NOT_VISIBLE')
  const upload = await send(g.auth, 'GET', '/', { 'x-original-method': 'PUT', 'x-original-uri': '/api/v4/projects/100/packages/generic/t/1/t.bin', 'content-type': 'application/octet-stream', 'x-original-content-length': '4096', ...job })
  assert.equal(upload.status, 200, 'binary uploads carry no parameters')
  // Without a Content-Type: the upload itself (curl --upload-file), but where the API parses it as JSON.
  const untyped = (method: string, uri: string): Record<string, string> => ({ 'x-original-method': method, 'x-original-uri': uri, 'x-original-content-length': '4096', ...job })
  assert.equal((await send(g.auth, 'GET', '/', untyped('PUT', '/api/v4/projects/100/packages/generic/t/1/t.bin'))).status, 200, 'curl --upload-file to generic packages')
  const pypi = await send(g.auth, 'GET', '/', untyped('POST', '/api/v4/projects/100/packages/pypi'))
  assert.equal(pypi.status, 403, 'PyPI\'s API parses a body without a type as JSON')
  assert.equal(pypi.json().code, 'BODY_NOT_VISIBLE')
  // NuGet's too, but its push and delete declare authenticate_with: no credential is read from a body there.
  assert.equal((await send(g.auth, 'GET', '/', untyped('DELETE', '/api/v4/projects/100/packages/nuget/pkg/1.0.0'))).status, 200)
  // Envoy with_request_body / Traefik forwardBody: a body that is sent is inspected.
  const sent = await send(g.auth, 'POST', '/api/v4/projects/200/deployments', { 'content-type': 'application/x-www-form-urlencoded' }, `job_token=${TOKENS.app}`)
  assert.equal(sent.status, 403)
  assert.equal(sent.json().code, 'MISSING_POLICIES')
})

test('forward-auth: a body the proxy sends is read to its end before the answer (large JSON and multipart, no Content-Type)', { timeout: 60_000 }, async (t) => {
  const g = await authGate(t)
  const NPM = '/api/v4/projects/200/packages/npm/@acme%2fhello'
  const big = (extra: Record<string, string>): string => JSON.stringify({ data: 'x'.repeat(200 * 1024), ...extra })
  const typed = { 'content-type': 'application/json' }
  const late = await send(g.auth, 'PUT', NPM, { 'job-token': TOKENS.lib, ...typed }, big({ job_token: TOKENS.tools }))
  assert.equal(late.status, 401, 'a second job token after 200 KiB: GitLab would take the body\'s')
  assert.equal(late.json().code, 'CREDENTIAL_AMBIGUOUS')
  const unseen = await send(g.auth, 'PUT', NPM, typed, big({ job_token: TOKENS.lib }))
  assert.equal(unseen.status, 401, unseen.text)
  assert.equal(unseen.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED')
  assert.equal((await send(g.auth, 'PUT', NPM, { 'job-token': TOKENS.lib, ...typed }, big({}))).status, 200, 'a clean large body')
  const b = 'fa-boundary'
  const upload = `--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n${'y'.repeat(200 * 1024)}\r\n--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${TOKENS.tools}\r\n--${b}--\r\n`
  const multipart = await send(g.auth, 'PUT', '/api/v4/projects/100/packages/nuget', { 'job-token': TOKENS.app, 'content-type': `multipart/form-data; boundary=${b}` }, upload)
  assert.equal(multipart.status, 401, multipart.text)
  assert.equal(multipart.json().code, 'CREDENTIAL_AMBIGUOUS')
  const untyped = await send(g.auth, 'DELETE', '/api/v4/projects/200/packages/nuget/pkg/1.0.0', {}, JSON.stringify({ job_token: TOKENS.app }))
  assert.equal(untyped.status, 401, untyped.text)
  assert.equal(untyped.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED')
  assert.equal((await send(g.auth, 'PUT', '/api/v4/projects/100/packages/generic/t/1/t.bin', job, Buffer.alloc(300 * 1024, 0x42))).status, 200, 'a binary upload without a type')
  // Envoy's allow_partial_message: only the first bytes came; the rest may hold a job token.
  const form = { 'content-type': 'application/x-www-form-urlencoded', 'x-envoy-auth-partial-body': 'true' }
  const partial = await send(g.auth, 'POST', '/api/v4/projects/100/deployments', { ...form, ...job }, 'ref=main&tag=false')
  assert.equal(partial.status, 403, partial.text)
  assert.equal(partial.json().code, 'BODY_NOT_VISIBLE')
  assert.equal((await send(g.auth, 'POST', '/api/v4/projects/100/deployments', { ...form, 'private-token': 'glpat-user' }, 'ref=main')).status, 403, 'a visible PAT ranks below a job token in the body\'s access_token')
})

test('behind a real nginx with deploy/nginx/job-token-gate.conf', { skip: needsNginx }, async (t) => {
  const g = await authGate(t)
  // The decision listener behind a counter of the connections nginx opens to it.
  let decisionConnections = 0
  const counter = createNetServer(client => {
    decisionConnections++
    const gate = connect(g.gate.authAddress()!.port, '127.0.0.1')
    client.pipe(gate).pipe(client)
    client.on('error', () => gate.destroy())
    gate.on('error', () => client.destroy())
  })
  await new Promise<void>(resolve => counter.listen(0, '127.0.0.1', resolve))
  t.after(() => { counter.close() })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: (counter.address() as AddressInfo).port, api: g.gate.address().port })
  const allowed = await send(base, 'GET', '/api/v4/projects/200/packages', job)
  assert.equal(allowed.status, 200)
  assert.equal(allowed.json().upstream, true)
  // Allowed decisions reuse nginx's kept-alive connection to the gate (one worker: one connection).
  const before = decisionConnections
  for (let i = 0; i < 5; i++) assert.equal((await send(base, 'GET', '/api/v4/projects/200/packages', job)).status, 200)
  assert.equal(decisionConnections, before, `connections to the decision listener for 5 more allowed requests: ${decisionConnections - before}`)
  // In forward-auth nginx, not the gate, sends the request to GitLab: names with '_' (which Puma
  // reads as the '-' spelling, docs/deploy.md) are dropped by nginx's underscores_in_headers off.
  assert.equal((await send(base, 'GET', '/api/v4/projects/200/packages', { ...job, X_Forwarded_Ssl: 'on' })).status, 200)
  assert.equal(g.seen.at(-1)!.headers.x_forwarded_ssl, undefined)
  assert.equal(g.seen.at(-1)!.headers['job-token'], job['job-token'])
  const denied = await send(base, 'PUT', '/api/v4/projects/200/packages/npm/foo', job)
  assert.equal(denied.status, 403)
  const unknown = await send(base, 'GET', '/api/v4/projects/200/packages/maven/a/b/1/b.jar', { 'job-token': TOKENS.appFinished })
  assert.equal(unknown.status, 401)
  assert.equal(unknown.headers['www-authenticate'], 'Basic realm="GitLab Packages Registry"')
  const hidden = await send(base, 'POST', '/api/v4/projects/100/deployments', { 'content-type': 'application/x-www-form-urlencoded' }, `job_token=${TOKENS.tools}`)
  assert.equal(hidden.status, 403, 'a job token in a body nginx does not pass on is not waved through')
  // The gate's own endpoints are routed to its API listener and answered there, never by GitLab.
  for (const [method, path] of [['PATCH', '/api/v4/projects/200/job_token_scope'], ['PATCH', '/api/v4/projects/acme%2Flib/job_token_scope.json'], ['POST', '/api//v4/projects/200/job%5Ftoken%5Fscope/allowlist']] as const) {
    const scope = await send(base, method, path, { 'content-type': 'application/json' }, '{"enabled":false}')
    assert.equal(scope.status, 401, `${path}: ${scope.text}`)
    assert.equal(scope.json().code, 'ADMIN_UNAUTHENTICATED')
  }
  // Root namespaces' policies and the operator's token registrations: the gate's API too.
  for (const path of ['/api/v4/groups/acme/job_token_policies', '/api/v4/gate/graphql_token_scopes']) {
    const own = await send(base, 'GET', path)
    assert.equal(own.status, 401, `${path}: ${own.text}`)
    assert.match(String(own.json().code), /^ADMIN_/, `${path}: ${own.text}`)
  }
  const mutation = await send(base, 'POST', '/api/graphql', { 'content-type': 'application/json', 'private-token': 'glpat-someone' }, JSON.stringify({ query: 'mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/app" }) { errors } }' }))
  assert.equal(mutation.json().data.ciJobTokenScopeRemoveProject, null, 'answered by the gate (the caller is no Maintainer it knows)')
  assert.ok(mutation.json().errors.length > 0)
  const query = await send(base, 'POST', '/api/graphql', { 'content-type': 'application/json' }, JSON.stringify({ query: '{ currentUser { id } }' }))
  assert.equal(query.status, 200, 'other GraphQL passes through the gate to GitLab')
  const forwarded = g.seen.map(s => `${s.method} ${s.url}`)
  assert.deepEqual(forwarded.slice(0, 2), ['GET /', 'GET /api/v4/projects/200/packages'])
  assert.ok(!forwarded.some(r => /job_token|job%5Ftoken|\/gate\//i.test(r)), `no scope request reached GitLab: ${forwarded.join(', ')}`)
  assert.equal(forwarded.filter(r => r === 'POST /api/graphql').length, 1, 'only the ordinary query reached GitLab\'s GraphQL')
  // GitLab's GraphQL at /api/glql goes the same way.
  const glqlMutation = await send(base, 'POST', '/api/glql', { 'content-type': 'application/json', 'private-token': 'glpat-someone' }, JSON.stringify({ query: 'mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/app" }) { errors } }' }))
  assert.equal(glqlMutation.json().data.ciJobTokenScopeRemoveProject, null, 'answered by the gate at /api/glql')
  const glqlQuery = await send(base, 'POST', '/api/glql', { 'content-type': 'application/json' }, JSON.stringify({ query: '{ currentUser { id } }' }))
  assert.equal(glqlQuery.status, 200, `other GraphQL at /api/glql passes through the gate to GitLab: ${glqlQuery.text}`)
  assert.equal(g.seen.filter(s => `${s.method} ${s.url}` === 'POST /api/glql').length, 1, 'only the ordinary query reached GitLab\'s /api/glql')
})
