// The decision log: tokens in every form GitLab reads them never reach a log line, whatever the
// decision; the line carries durations and the route pattern (the path only when configured,
// never the query); allows can be sampled, denies and errors never are; levels are configurable.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { createDecisionLog } from '../../src/gate/decision-log.ts'
import { newExchange, type Exchange } from '../../src/gate/pipeline.ts'
import { createCanonicalizer } from '../../src/routing/canonical.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { postGraphql, startGraphqlGate } from '../helpers/graphql-gate.ts'

const secret = (name: string): string => `glcbt-64_${name}${'0'.repeat(Math.max(0, 24 - name.length))}`
const basic = (user: string, password: string): string => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
/** A JSON Web Token, as a job's ID token (`id_tokens:`) is: secret, though no GitLab token. */
const JWT = `${Buffer.from('{"alg":"RS256","kid":"k1","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"project_path:acme/app","aud":"https://vault.example"}').toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`

interface Req { name: string, method: string, path: string, headers?: Record<string, string>, body?: string, secrets: string[] }

/** Every place a credential can travel, with a valid token (allowed) and with unknown ones (denied). */
function requests (): Req[] {
  const s = (n: string): string => secret(n)
  const boundary = 'xYzBoundary'
  const multipart = (token: string): string => [
    `--${boundary}`, 'Content-Disposition: form-data; name="job_token"', '', token,
    `--${boundary}`, 'Content-Disposition: form-data; name="file"; filename="a.txt"', 'Content-Type: text/plain', '', 'hello',
    `--${boundary}--`, ''
  ].join('\r\n')
  const list: Req[] = [
    { name: 'JOB-TOKEN header (valid)', method: 'GET', path: '/api/v4/projects/200/packages', headers: { 'job-token': TOKENS.app }, secrets: [TOKENS.app] },
    { name: 'JOB-TOKEN header (unknown)', method: 'GET', path: '/api/v4/projects/200/packages', headers: { 'job-token': s('hdr') }, secrets: [s('hdr')] },
    { name: 'JOB_TOKEN header', method: 'GET', path: '/api/v4/projects/200/packages', headers: { job_token: s('underscore') }, secrets: [s('underscore')] },
    { name: 'query job_token (valid)', method: 'GET', path: `/api/v4/projects/200/packages?job_token=${TOKENS.app}`, secrets: [TOKENS.app] },
    { name: 'query job_token (denied)', method: 'PUT', path: `/api/v4/projects/200/packages/npm/foo?job_token=${TOKENS.app}&x=1`, secrets: [TOKENS.app] },
    { name: 'query token', method: 'GET', path: `/api/v4/projects/200/packages?token=${s('qtoken')}`, secrets: [s('qtoken')] },
    { name: 'query access_token', method: 'GET', path: `/api/v4/projects/200/packages?access_token=${s('qaccess')}`, secrets: [s('qaccess')] },
    { name: 'query bearer_token', method: 'GET', path: `/api/v4/projects/200/packages?bearer_token=${s('qbearer')}`, secrets: [s('qbearer')] },
    { name: 'query private_token (PAT)', method: 'GET', path: '/api/v4/projects/200/variables?private_token=glpat-querypatsecret0001', secrets: ['glpat-querypatsecret0001'] },
    { name: 'Basic (valid, Maven)', method: 'GET', path: '/api/v4/projects/200/packages/maven/com/acme/app/1.0/app-1.0.jar', headers: { authorization: basic('gitlab-ci-token', TOKENS.app) }, secrets: [TOKENS.app, basic('gitlab-ci-token', TOKENS.app).slice(6)] },
    { name: 'Basic (unknown)', method: 'GET', path: '/api/v4/projects/200/packages', headers: { authorization: basic('gitlab-ci-token', s('basic')) }, secrets: [s('basic'), basic('gitlab-ci-token', s('basic')).slice(6)] },
    { name: 'Bearer', method: 'GET', path: '/api/v4/projects/200/packages', headers: { authorization: `Bearer ${s('bearer')}` }, secrets: [s('bearer')] },
    { name: 'Bearer OAuth (no job token)', method: 'GET', path: '/api/v4/projects/200/variables', headers: { authorization: 'Bearer oauthsecretvalue0000001' }, secrets: ['oauthsecretvalue0000001'] },
    { name: 'X-NuGet-ApiKey', method: 'PUT', path: '/api/v4/projects/200/packages/nuget', headers: { 'x-nuget-apikey': s('nuget') }, secrets: [s('nuget')] },
    { name: 'PRIVATE-TOKEN (PAT)', method: 'GET', path: '/api/v4/projects/200/packages', headers: { 'private-token': 'glpat-headerpatsecret0001' }, secrets: ['glpat-headerpatsecret0001'] },
    { name: 'PRIVATE-TOKEN holding a job token', method: 'GET', path: '/api/v4/projects/200/packages', headers: { 'private-token': s('privjob') }, secrets: [s('privjob')] },
    { name: 'ambiguous credentials', method: 'GET', path: '/api/v4/projects/200/packages', headers: { 'job-token': TOKENS.app, 'private-token': 'glpat-ambiguoussecret001' }, secrets: [TOKENS.app, 'glpat-ambiguoussecret001'] },
    { name: 'form body (valid)', method: 'POST', path: '/api/v4/projects/200/deployments', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `environment=prod&job_token=${TOKENS.app}`, secrets: [TOKENS.app] },
    { name: 'form body (unknown)', method: 'POST', path: '/api/v4/projects/200/deployments', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `job_token=${s('form')}`, secrets: [s('form')] },
    { name: 'JSON body', method: 'POST', path: '/api/v4/projects/200/deployments', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ environment: 'prod', job_token: s('json') }), secrets: [s('json')] },
    { name: 'JSON body (valid, self access)', method: 'POST', path: '/api/v4/projects/100/deployments', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ job_token: TOKENS.app }), secrets: [TOKENS.app] },
    { name: 'multipart body', method: 'PUT', path: '/api/v4/projects/200/packages/generic/pkg/1.0/a.txt', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart(s('multipart')), secrets: [s('multipart')] },
    { name: 'multipart body (valid)', method: 'POST', path: '/api/v4/projects/100/packages/pypi', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart(TOKENS.app), secrets: [TOKENS.app] },
    { name: 'finished job', method: 'GET', path: '/api/v4/projects/200/packages', headers: { 'job-token': TOKENS.appFinished }, secrets: [TOKENS.appFinished] },
    { name: 'token in a rejected path', method: 'GET', path: `/api/v4/projects/200/%2e%2e/packages?job_token=${s('dotpath')}`, secrets: [s('dotpath')] },
    { name: 'token pasted into the path', method: 'GET', path: `/api/v4/projects/200/packages/generic/${s('inpath')}/1.0/a.txt`, secrets: [s('inpath')] },
    { name: 'PAT pasted into the path', method: 'GET', path: '/api/v4/version/glpat-pathpatsecret00001', secrets: ['glpat-pathpatsecret00001'] },
    // A job's ID token (id_tokens:, a JWT) in a package name, and as a project's full path.
    { name: 'JWT pasted into the path', method: 'GET', path: `/api/v4/projects/200/packages/generic/${JWT}/1.0/a.txt`, headers: { 'job-token': TOKENS.app }, secrets: [JWT] },
    { name: 'JWT as a project path', method: 'GET', path: `/api/v4/projects/acme%2F${JWT}/packages`, headers: { 'job-token': TOKENS.app }, secrets: [JWT] },
    { name: 'non-API path', method: 'GET', path: `/acme/lib.git/info/refs?service=git-upload-pack&job_token=${s('git')}`, secrets: [s('git')] }
  ]
  return list
}

for (const [label, env] of [['default settings', {}], ['with GATE_LOG_RAW_PATH', { GATE_LOG_RAW_PATH: 'true' }]] as const) {
  test(`no log line contains a token (${label})`, async (t) => {
    const g = await startTestGate(t, env)
    const list = requests()
    const statuses = new Set<number>()
    for (const r of list) {
      const res = await send(g.url, r.method, r.path, r.headers, r.body)
      statuses.add(res.status)
    }
    // The cases reach allows, denies and rejections, so every branch of the log is exercised.
    for (const status of [200, 400, 401, 403]) assert.ok(statuses.has(status), `some request answered ${status}`)
    const decisions = g.logs.filter(l => l.msg === 'decision')
    assert.equal(decisions.length, list.length, 'one decision line per request')
    const text = g.logs.map(l => JSON.stringify(l)).join('\n')
    for (const r of list) {
      for (const s of r.secrets) assert.ok(!text.includes(s), `${r.name}: the log holds ${s}`)
    }
    assert.ok(!text.includes(g.gitlab.serviceToken), 'the service token is never logged')
    assert.ok(!/glcbt-|glpat-|eyJ/.test(text), 'nothing token-shaped at all')
    if (label === 'default settings') {
      assert.ok(decisions.every(l => !('path' in l)), 'no path unless configured')
    } else {
      const withPath = decisions.filter(l => typeof l.path === 'string')
      assert.ok(withPath.length > 0)
      assert.ok(withPath.every(l => !(l.path as string).includes('?')), 'never the query')
      assert.ok(withPath.some(l => l.path === '/api/v4/projects/200/packages'))
      assert.ok(withPath.some(l => l.path === '/api/v4/projects/200/packages/generic/[token]/1.0/a.txt'), 'a token-shaped segment is written [token]')
      assert.ok(withPath.some(l => l.path === '/api/v4/projects/[token]/packages'), 'a JWT in a project path too')
    }
  })
}

test('the configuration API\'s lines and GraphQL refusals never hold a token pasted into a path or an argument', async (t) => {
  // A JWT (a job's ID token) pasted where a project path or an entry id goes was written whole:
  // only gl<letters>-... segments were written [token].
  const g = await adminGate(t)
  const cases: Array<[string, string, Record<string, string>, number]> = [
    ['GET', `/api/v4/projects/${JWT}/job_token_scope`, {}, 401],
    ['GET', `/api/v4/projects/acme%2F${JWT}/job_token_scope`, { 'private-token': ADMIN }, 404],
    // Read as GitLab's API may read it: the entry id up to a '.', the rest a format (400: no integer id).
    ['DELETE', `/api/v4/projects/200/job_token_scope/allowlist/${JWT}`, { 'private-token': USERS.maintainer }, 400],
    ['GET', `/api/v4/projects/200/job_token_scope/${JWT}`, { 'private-token': ADMIN }, 404]
  ]
  for (const [method, path, headers, status] of cases) {
    const res = await send(g.url, method, path, headers)
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`)
  }
  const admin = g.logs.filter(l => l.admin === true)
  assert.equal(admin.length, cases.length, 'each request has its line')
  assert.deepEqual(admin.map(l => l.path), ['/projects/[token]/job_token_scope', '/projects/[token]/job_token_scope', '/projects/200/job_token_scope/allowlist/[token]', '/projects/200/job_token_scope/[token]'])

  // A fine-grained token's refusal names its target, a full path from the document: a token
  // given as `fullPath` (a literal or a variable) was written whole.
  const pat = 'glpat-pastedasfullpath0001'
  const q = await startGraphqlGate(t, { tokens: { 'glpat-fine': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'update_work_item'], project_id: 200 }] } } })
  // A global ID's model is the document's text as its id is: `gid://gitlab/<token>/1` (or its
  // base64) names another object, and its model was written whole.
  const gidOf = (text: string): string => Buffer.from(text).toString('base64url')
  const asked = [
    { query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: `acme/${pat}` } },
    { query: `{ project(fullPath: "${JWT}") { id } }` },
    { query: `{ group(fullPath: "acme/${JWT}") { id } }` },
    { query: 'mutation($input: IssueMoveInput!) { issueMove(input: $input) { errors } }', variables: { input: { projectPath: 'acme/lib', iid: '1', targetProjectPath: `other/${JWT}` } } },
    { query: `mutation { vulnerabilityConfirm(input: {id: "gid://gitlab/Vulnerability/${pat}"}) { errors } }` },
    { query: `mutation { vulnerabilityConfirm(input: {id: "gid://gitlab/${pat}/1"}) { errors } }` },
    { query: `mutation { vulnerabilityConfirm(input: {id: "${gidOf(`gid://gitlab/${JWT}/1`)}"}) { errors } }` }
  ]
  for (const body of asked) {
    const res = await postGraphql(q.url, body, { 'private-token': 'glpat-fine' })
    assert.equal(res.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING', res.text)
  }
  const refusals = q.logs.filter(l => l.graphql === true)
  assert.deepEqual(refusals.map(l => l.target), ['project acme/[token]', 'project [token]', 'group acme/[token]', 'project other/[token]', 'Vulnerability [token]', '[token] 1', '[token] 1'])
  for (const text of [...g.logs, ...q.logs].map(l => JSON.stringify(l))) {
    assert.ok(!text.includes(JWT) && !text.includes(pat) && !text.includes('eyJ'), `a log line holds a token: ${text}`)
  }
})

test('the refusals of web model deletes, group and npm reads, Envoy\'s headers and users\' package mutations never log a pasted token', async (t) => {
  // A token or JWT pasted where a web model delete names its project or model, where a group
  // read names its group, as an npm package name, in a forward-auth header naming the request, or
  // as a package mutation's project path: each line, and /metrics, is searched for it.
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_LOG_RAW_PATH: 'true' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const rule = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { delete: 'maintainer' }, npm: { delete: 'maintainer' } } }))
  assert.equal(rule.status, 200, rule.text)
  const pat = 'glpat-pastedintoarequest01'
  const session = { cookie: `_gitlab_session=${USERS.developer}`, 'x-csrf-token': 'csrf' }
  const graphql = (query: string): [string, Record<string, string>, string] => ['/api/graphql', { 'content-type': 'application/json', 'private-token': USERS.developer }, JSON.stringify({ query })]
  const cases: Array<[string, string, string, Record<string, string>, string | undefined, number]> = []
  for (const token of [pat, JWT]) {
    const encoded = [...token].map(c => '%' + c.charCodeAt(0).toString(16)).join('')
    cases.push(
      [g.url, 'DELETE', `/acme/lib/-/ml/models/${token}`, session, undefined, 403],
      [g.url, 'DELETE', `/acme/lib/-/ml/models/${encoded}`, session, undefined, 403],
      [g.url, 'DELETE', `/acme/${token}/-/ml/models/7`, session, undefined, 200],
      [auth, 'DELETE', '/acme/lib/-/ml/models/7', { ...session, 'x-original-method': 'GET', 'x-original-uri': `/acme/lib/-/ml/models/${token}` }, undefined, 403],
      [auth, 'GET', '/_job_token_gate', { ...session, 'x-original-method': 'DELETE', 'x-original-uri': `/acme/lib/-/ml/models/${token}` }, undefined, 403],
      [g.url, 'GET', `/api/v4/groups/${token}/-/packages/npm/foo`, { 'job-token': TOKENS.app }, undefined, 200],
      [g.url, 'GET', `/api/v4/groups/acme/-/packages/npm/@acme%2F${token}`, { 'job-token': TOKENS.app }, undefined, 200],
      [g.url, 'GET', `/api/v4/packages/npm/${encoded}`, { 'job-token': TOKENS.app }, undefined, 200],
      ['', 'POST', ...graphql(`mutation { mlModelDelete(input: {projectPath: "acme/${token}", id: "gid://gitlab/Ml::Model/1"}) { errors } }`), 200],
      ['', 'POST', ...graphql(`mutation { destroyPackage(input: {id: "gid://gitlab/Packages::Package/${token}"}) { errors } }`), 403],
      ['', 'POST', ...graphql(`mutation { ${Array.from({ length: 21 }, (_, i) => `d${i}: destroyPackageFiles(input: {projectPath: "nobody/${token}${i}", ids: []}) { errors }`).join(' ')} }`), 400],
      ['', 'POST', ...graphql(`mutation { ${Array.from({ length: 21 }, (_, i) => `m${i}: mlModelCreate(input: {projectPath: "acme/${token}${i}", name: "m"}) { errors }`).join(' ')} }`), 400]
    )
  }
  for (const [base, method, path, headers, body, status] of cases) {
    const res = await send(base === '' ? g.url : base, method, path, headers, body)
    assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(headers)}: ${res.text}`)
  }
  const paths = g.logs.filter(l => l.msg === 'decision' && typeof l.path === 'string').map(l => l.path)
  for (const path of ['/acme/lib/-/ml/models/[token]', '/acme/[token]/-/ml/models/7', '/api/v4/groups/[token]/-/packages/npm/foo', '/api/v4/groups/acme/-/packages/npm/[token]', '/api/v4/packages/npm/[token]']) {
    assert.ok(paths.includes(path), `a line names ${path}`)
  }
  assert.deepEqual(g.logs.filter(l => l.msg === 'configuration API refused').map(l => l.reason), Array(2).fill(['PACKAGE_PROJECT_UNCERTAIN', 'GRAPHQL_TOO_MANY_PROJECTS', 'GRAPHQL_TOO_MANY_PROJECTS']).flat())
  const metrics = await (await fetch(`${g.healthUrl}/metrics`)).text()
  for (const text of [...g.logs.map(l => JSON.stringify(l)), metrics]) {
    assert.ok(!/glpat-|eyJ/.test(text), `a line holds a token: ${text.slice(0, 300)}`)
  }
})

test('decision lines: fields and durations', async (t) => {
  const g = await startTestGate(t)
  await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app, 'x-request-id': 'req-fields-1' })
  const allow = g.logs.find(l => l.request_id === 'req-fields-1')!
  assert.equal(allow.decision, 'allow')
  assert.equal(allow.reason, 'POLICIES_GRANTED')
  assert.equal(allow.method, 'GET')
  assert.equal(allow.route_id, 'get_projects_id_packages')
  assert.equal(allow.route_pattern, '/projects/:id/packages')
  assert.equal(allow.job_id, 1)
  assert.equal(allow.job_project_id, 100)
  assert.equal(allow.accessed_project_id, 200)
  assert.equal(allow.status, 200)
  for (const field of ['duration_ms', 'decision_ms', 'upstream_headers_ms']) assert.equal(typeof allow[field], 'number', field)
  assert.ok((allow.decision_ms as number) <= (allow.duration_ms as number))
  assert.ok((allow.upstream_headers_ms as number) <= (allow.duration_ms as number))

  await send(g.url, 'POST', '/api/v4/projects/200/deployments', { 'job-token': TOKENS.app, 'x-request-id': 'req-fields-2' })
  const deny = g.logs.find(l => l.request_id === 'req-fields-2')!
  assert.equal(deny.decision, 'deny')
  assert.deepEqual(deny.missing_policies, ['admin_deployments', 'admin_environments'])
  assert.equal(deny.upstream_headers_ms, undefined, 'nothing was forwarded')
  assert.equal(typeof deny.decision_ms, 'number')
})

test('sampling drops allows only; levels are configurable, errors at least warn', async (t) => {
  const g = await startTestGate(t, { GATE_DECISION_LOG_SAMPLE_RATE: '0', GATE_DECISION_LOG_LEVEL: 'debug' })
  for (let i = 0; i < 5; i++) await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  await send(g.url, 'GET', '/api/v4/projects/200/variables', { 'private-token': 'glpat-x0000000000000000' })
  await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.app })
  await send(g.url, 'GET', '/api/v4/groups/10/-/packages/maven/com/acme/app/1.0/app-1.0.jar', { 'job-token': TOKENS.app })
  await g.store.close()
  await send(g.url, 'GET', '/api/v4/projects/300/packages', { 'job-token': TOKENS.app })
  const decisions = g.logs.filter(l => l.msg === 'decision')
  assert.deepEqual(decisions.map(l => l.decision), ['deny', 'deferred', 'error'])
  assert.deepEqual(decisions.map(l => l.level), [20, 20, 40], 'debug as configured; the error at warn')

  // Half the allows at rate 0.5 is not testable without a seed; rate 1 logs all of them.
  const all = await startTestGate(t, { GATE_DECISION_LOG_SAMPLE_RATE: '1', GATE_DECISION_LOG_LEVEL: 'warn' })
  for (let i = 0; i < 3; i++) await send(all.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app })
  const lines = all.logs.filter(l => l.msg === 'decision')
  assert.equal(lines.length, 3)
  assert.ok(lines.every(l => l.level === 40))
})

test('createDecisionLog: the sample rate applies to allows, never to denies', () => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const draws = [0.1, 0.9, 0.3, 0.7, 0.99, 0.99]
  const log = createDecisionLog(logger, { level: 'info', sampleRate: 0.5, rawPath: false, random: () => draws.shift() ?? 0 })
  const requested = createCanonicalizer()('GET', '/api/v4/projects/1/packages')
  const exchange = (verdict: Exchange['verdict']): Exchange => ({ ...newExchange('GET', '/api/v4/projects/1/packages', {}, [], null, requested), verdict })
  for (let i = 0; i < 4; i++) log(exchange('allow'), `allow-${i}`, 200, { decisionMs: 1, totalMs: 2 })
  log(exchange('deny'), 'deny-0', 403, { decisionMs: 1, totalMs: 1 })
  log(exchange('would_deny'), 'would-0', 200, { decisionMs: 1, totalMs: 1 })
  assert.deepEqual(lines.map(l => l.request_id), ['allow-0', 'allow-2', 'deny-0', 'would-0'])
})

test('createDecisionLog: its line is the one pino writes for the same fields, byte for byte', () => {
  const route = { id: 'packages_generic_get', method: 'GET', pattern: '/projects/:id/packages/generic/:name/*path', policies: ['read_packages'], skipPolicies: false, resource: 'packages', title: 'x', accessedProject: 'project' }
  const requested = createCanonicalizer()('GET', '/api/v4/projects/1/packages/generic/a/b')
  const base = newExchange('GET', '/api/v4/projects/1/packages/generic/a/b', {}, [], null, requested)
  const identity = { jobId: 12, jobProjectId: 34, jobProjectPath: 'g/p', ancestorGroupIds: [5], userId: 7 }
  const exchanges: Exchange[] = [
    base,
    { ...base, canonical: requested.kind === 'rejected' ? null : requested, match: { route, params: {} } as unknown as Exchange['match'], identity, accessedProjectId: 56, verdict: 'allow', reason: 'POLICIES_GRANTED', stage: 'decide' },
    { ...base, method: 'X-"ODD"\\', identity, verdict: 'deny', reason: 'MISSING_POLICIES', stage: 'decide', missingPolicies: ['admin_packages', 'read_"x"'] },
    { ...base, verdict: 'error', reason: 'UPSTREAM_TIMEOUT', stage: 'forward' },
    { ...base, verdict: 'error', reason: 'UPSTREAM_UNAVAILABLE', stage: 'forward', upstreamError: 'ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match "certificate\'s" altnames\n' }
  ]
  const timings = [{ decisionMs: 0.0123456, totalMs: 1.5 }, { decisionMs: 2, totalMs: 3, upstreamHeadersMs: 0.25 }]
  // A mixin that adds nothing sends every line through pino's own path.
  const write = (viaPino: boolean, child: boolean, rawPath: boolean): string[] => {
    const lines: string[] = []
    const root = pino({ level: 'info', timestamp: () => ',"time":1', ...(viaPino ? { mixin: () => ({}) } : {}) }, { write: (line: string) => { lines.push(line) } })
    const logger = child ? root.child({ component: 'gate "x"' }) : root
    // Count the lines that go through pino's generic write.
    const internals = logger as unknown as Record<symbol, (...args: unknown[]) => void>
    const pinoWrite = internals[pino.symbols.writeSym]!
    let generic = 0
    internals[pino.symbols.writeSym] = function (this: unknown, ...args: unknown[]) { generic++; pinoWrite.apply(this, args) }
    const log = createDecisionLog(logger, { level: 'info', sampleRate: 1, rawPath })
    for (const x of exchanges) for (const timing of timings) log(x, 'req-"1"', 403, timing)
    assert.equal(generic, viaPino ? lines.length : 0, viaPino ? 'the mixin sends every line through pino' : 'built directly')
    return lines
  }
  for (const child of [false, true]) {
    for (const rawPath of [false, true]) {
      const fast = write(false, child, rawPath)
      assert.equal(fast.length, exchanges.length * timings.length)
      assert.deepEqual(fast, write(true, child, rawPath), `child ${child}, rawPath ${rawPath}`)
      for (const line of fast) assert.equal((JSON.parse(line) as { msg: string }).msg, 'decision')
    }
  }
  // A level the logger does not write: nothing, as pino.
  const lines: string[] = []
  const quiet = createDecisionLog(pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } }), { level: 'info', sampleRate: 1, rawPath: false })
  quiet(base, 'r', 200, timings[0]!)
  assert.deepEqual(lines, [])
  quiet({ ...base, verdict: 'error' }, 'r', 500, timings[0]!)
  assert.equal(lines.length, 1, 'errors at least at warn')
})
