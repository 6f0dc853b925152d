// `Authorization: Basic gitlab-ci-token:<personal access token>` at /api/graphql. GitLab's
// GraphQL reads the password of Basic under any user name as a personal access token
// (RequestAuthenticator#find_user_for_graphql_api_request: find_personal_access_token_from_http_basic_auth,
// /api/graphql being an API request) and reads no job token at all, so it runs such a request as
// the token's user. The gate refused it, 401 TOKEN_UNKNOWN: the user name made it a job's token,
// looked up as one. It is now decided as GitLab takes it: the fine-grained enforcement for a
// fine-grained token, forwarded as sent for a legacy one, whatever GATE_NON_API_JOB_TOKENS says.
// A job's token stays a job's: a `glcbt-` password, or one GitLab does not know as an access
// token (which may be a job's token without the mark), goes to the job-token stages as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] },
  'glpat-legacy': { userId: 8 }
}
const JOB = 'glcbt-64_running0123456789abcdef'
const OTHER = JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }' })
const OWN = JSON.stringify({ query: '{ project(fullPath: "acme/lib") { id } }' })
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

async function post (url: string, authorization: string, body: string): Promise<{ status: number, body: any }> {
  const res = await fetch(url + '/api/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body })
  return { status: res.status, body: await res.json() }
}

for (const nonApi of ['forward', 'deny']) {
  test(`Basic gitlab-ci-token:<personal access token> at /api/graphql is that token, as GitLab's GraphQL takes it (GATE_NON_API_JOB_TOKENS=${nonApi})`, async (t) => {
    const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_NON_API_JOB_TOKENS: nonApi } })
    // A fine-grained token without the permission at other/tools: GitLab's GraphQL error, nothing forwarded.
    const refused = await post(g.url, basic('gitlab-ci-token', 'glpat-lib-reader'), OTHER)
    assert.equal(refused.status, 200, JSON.stringify(refused.body))
    assert.equal(refused.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING')
    assert.equal(refused.body.errors[0].extensions.target, 'project other/tools')
    assert.equal(g.upstream.length, 0)
    // With it: forwarded, the header as sent.
    const allowed = await post(g.url, basic('gitlab-ci-token', 'glpat-lib-reader'), OWN)
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body))
    assert.equal(g.upstream.length, 1)
    assert.equal(g.upstream[0]!.headers.authorization, basic('gitlab-ci-token', 'glpat-lib-reader'))
    assert.equal(g.upstream[0]!.body.toString(), OWN)
    // A legacy token: GitLab decides, forwarded as sent.
    const legacy = await post(g.url, basic('gitlab-ci-token', 'glpat-legacy'), OTHER)
    assert.equal(legacy.status, 200, JSON.stringify(legacy.body))
    assert.equal(g.upstream.length, 2)
    assert.equal(g.upstream[1]!.headers.authorization, basic('gitlab-ci-token', 'glpat-legacy'))
  })
}

test('Basic gitlab-ci-token:<a job\'s token, or a password GitLab knows as no access token> stays with the job-token stages', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_NON_API_JOB_TOKENS: 'deny' } })
  g.gitlab.jobs.set(JOB, { id: 3, status: 'running', projectId: 300, userId: 8 })
  const job = await post(g.url, basic('gitlab-ci-token', JOB), OTHER)
  assert.equal(job.status, 403, JSON.stringify(job.body))
  assert.equal(job.body.code, 'NON_API_JOB_TOKEN')
  const unknown = await post(g.url, basic('gitlab-ci-token', 'not-a-token-gitlab-knows'), OTHER)
  assert.equal(unknown.status, 401, JSON.stringify(unknown.body))
  assert.equal(unknown.body.code, 'TOKEN_UNKNOWN')
  // Beside a job token elsewhere: two credentials, refused.
  const res = await fetch(g.url + '/api/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: basic('gitlab-ci-token', 'glpat-lib-reader'), 'job-token': JOB }, body: OWN })
  assert.equal(res.status, 401)
  assert.equal((await res.json() as { code: string }).code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal(g.upstream.length, 0)
})

test('a 2 MiB upload with Basic gitlab-ci-token:<personal access token>: decided from its first parts, forwarded byte for byte', async (t) => {
  const tokens: Record<string, FakeToken> = {
    'glpat-uploader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_markdown_upload', 'read_project'], project_id: 200 }] },
    'glpat-lib-reader': TOKENS['glpat-lib-reader']!
  }
  const g = await startGraphqlGate(t, { tokens, env: { GATE_NON_API_JOB_TOKENS: 'deny' } })
  const boundary = '----graphql-upload-ci'
  const part = (name: string, value: string): string => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  const operations = { query: 'mutation($file: Upload!, $p: ID!) { uploadCreate(input: { projectPath: $p, file: $file }) { errors } }', variables: { file: null, p: 'acme/lib' } }
  const body = Buffer.concat([
    Buffer.from(part('operations', JSON.stringify(operations)) + part('map', '{"0":["variables.file"]}') +
      `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
    Buffer.alloc(2 << 20, 0x61),
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  const headers = (token: string): Record<string, string> => ({ 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: basic('gitlab-ci-token', token) })
  const allowed = await fetch(g.url + '/api/graphql', { method: 'POST', headers: headers('glpat-uploader'), body })
  assert.equal(allowed.status, 200, await allowed.text())
  assert.equal(g.upstream.length, 1)
  assert.equal(g.upstream[0]!.bytes, body.length)
  const refused = await fetch(g.url + '/api/graphql', { method: 'POST', headers: headers('glpat-lib-reader'), body })
  assert.equal(refused.status, 200)
  assert.equal((await refused.json() as any).errors?.[0]?.extensions?.permission, 'create_markdown_upload')
  assert.equal(g.upstream.length, 1, 'not forwarded')
})
