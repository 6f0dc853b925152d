// Finding: GitLab reads a job token only where a route does, and where it finds none it signs in
// the session of the request's cookies instead (lib/api/api_guard.rb, find_user_from_sources:
// `find_user_from_job_token || user_from_warden`, or `user_from_namespace_inheritable ||
// user_from_warden` on `authenticate_with` routes). The gate took any job token as the request's
// credential, so a Developer adding a job's token to their own browser session (cookie and CSRF
// token) escaped the users' package rules twice over:
// - on a package write the catalog does not list (the MLflow API's model registry changes, an
//   upload of a later GitLab), the token was stripped, as GitLab reads none there, and the
//   request forwarded with its cookies, which GitLab signed in: models created and deleted where
//   the project keeps `ml_model` writes to Maintainers;
// - on a route that reads its job token from Basic alone (Helm, Debian, RPM...), a `JOB-TOKEN`
//   header was decided as the job's (allowed with `write: "job_token_and_maintainer"`), while
//   GitLab, finding no token in Basic, uploaded as the Developer's session.
// The session beside a job token is now held to the users' rule as well.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { TOKENS } from '../helpers/gate.ts'

const MLFLOW = '/api/v4/projects/200/ml/mlflow/api/2.0/mlflow'
const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf', 'content-type': 'application/json' })

// Writes and deletes of acme/lib (200) no catalog route lists.
const WRITES: ReadonlyArray<readonly [string, string, string | undefined]> = [
  ['DELETE', `${MLFLOW}/registered-models/delete`, '{"name":"churn"}'],
  ['POST', `${MLFLOW}/registered-models/create`, '{"name":"churn"}'],
  ['PATCH', `${MLFLOW}/model-versions/update`, '{"name":"churn","version":"1.0.0"}'],
  ['DELETE', '/api/v4/projects/200/packages/ml_models/5/files/model.pkl', undefined]
]
// Where GitLab's job token finders read a token it does not authenticate on such a route.
const JOB_TOKENS: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
  ['JOB-TOKEN, the project\'s own job', { 'job-token': TOKENS.lib }, ''],
  ['JOB-TOKEN, another project\'s job', { 'job-token': TOKENS.app }, ''],
  ['job_token in the query', {}, `?job_token=${TOKENS.lib}`]
]

const holdsJobToken = (headers: Record<string, unknown>, url: string): boolean =>
  url.includes('glcbt-') || JSON.stringify(headers).includes('glcbt-')

test('a job token beside a Developer\'s session does not lift the users\' rule from a write the catalog misses', async t => {
  const g = await gateWithPackageRule(t, 'ml_model', { write: 'maintainer' })
  const before = g.seen.length
  for (const [method, path, body] of WRITES) {
    for (const [name, headers, query] of JOB_TOKENS) {
      const res = await send(g.url, method, path + query, { ...session(USERS.developer), ...headers }, body)
      assert.equal(res.status, 403, `${method} ${path} (${name}): ${res.text}`)
      assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY', `${method} ${path} (${name})`)
    }
  }
  assert.deepEqual(g.seen.slice(before).map(s => `${s.method} ${s.url}`), [], 'nothing reached GitLab')
})

test('a Maintainer\'s session, a job token alone and reads go on, the token stripped as before', async t => {
  const g = await gateWithPackageRule(t, 'ml_model', { write: 'maintainer' })
  const before = g.seen.length
  const passing: ReadonlyArray<readonly [string, string, Record<string, string>, string | undefined]> = [
    ...WRITES.map(([method, path, body]) => [method, path, { ...session(USERS.maintainer), 'job-token': TOKENS.lib }, body] as const),
    // No session: GitLab signs no one in, as the token is stripped.
    ['DELETE', `${MLFLOW}/registered-models/delete`, { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, '{"name":"churn"}'],
    ['GET', `${MLFLOW}/registered-models/get?name=churn`, { ...session(USERS.developer), 'job-token': TOKENS.lib }, undefined]
  ]
  for (const [method, path, headers, body] of passing) {
    const res = await send(g.url, method, path, headers, body)
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`)
  }
  const seen = g.seen.slice(before)
  assert.equal(seen.length, passing.length)
  for (const s of seen) assert.equal(holdsJobToken(s.headers, s.url), false, `${s.method} ${s.url}: the job token is stripped`)
})

test('a Developer\'s session beside a job token is held to the rule where the route reads the token elsewhere', async t => {
  const g = await gateWithPackageRule(t, 'helm', { write: 'job_token_and_maintainer' })
  const HELM = '/api/v4/projects/200/packages/helm/api/stable/charts'
  const binary = { 'content-type': 'application/octet-stream' }
  const before = g.seen.length
  // Helm reads a job token from Basic alone: GitLab signs the session in instead.
  for (const [query, extra] of [['', { 'job-token': TOKENS.lib }], [`?job_token=${TOKENS.lib}`, {}]] as const) {
    const res = await send(g.url, 'POST', HELM + query, { ...session(USERS.developer), ...binary, ...extra }, 'chart')
    assert.equal(res.status, 403, res.text)
    assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.equal(g.seen.length, before, 'nothing reached GitLab')
  // The job alone, with cookies that sign no one in, or beside a Maintainer's session goes on,
  // and so does a Developer's read.
  const basic = `Basic ${Buffer.from(`gitlab-ci-token:${TOKENS.lib}`).toString('base64')}`
  const passing: ReadonlyArray<readonly [string, string, Record<string, string>]> = [
    ['POST', HELM, { ...binary, authorization: basic }],
    ['POST', HELM, { ...binary, 'job-token': TOKENS.lib }],
    ['POST', HELM, { ...binary, authorization: basic, cookie: 'lb=node-3; theme=dark' }],
    ['POST', HELM, { ...session(USERS.maintainer), ...binary, 'job-token': TOKENS.lib }],
    ['GET', '/api/v4/projects/200/packages/helm/stable/index.yaml', { ...session(USERS.developer), 'job-token': TOKENS.lib }]
  ]
  for (const [method, path, headers] of passing) {
    const res = await send(g.url, method, path, headers, method === 'GET' ? undefined : 'chart')
    assert.equal(res.status, 200, `${method} ${path} ${Object.keys(headers).join(',')}: ${res.text}`)
  }
  assert.equal(g.seen.length - before, passing.length)
})

test('whatever the route, a session beside a job token is held to the rule: deletes of the format-agnostic package API too', async t => {
  const g = await gateWithPackageRule(t, 'npm', { delete: 'job_token_and_maintainer' })
  const res = await send(g.url, 'DELETE', '/api/v4/projects/200/packages/5', { ...session(USERS.developer), 'job-token': TOKENS.lib })
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY')
  const alone = await send(g.url, 'DELETE', '/api/v4/projects/200/packages/5', { 'job-token': TOKENS.lib })
  assert.equal(alone.status, 200, alone.text)
})
