// A job token beside other credentials at /api/graphql, against the credential GitLab's GraphQL
// takes (docs/graphql-tokens.md): an access token from `private_token`, PRIVATE-TOKEN,
// `access_token`, Bearer or `bearer_token`, else the password of Basic under any user name,
// `gitlab-ci-token` included; never a job token (since 17.1). The gate must decide on the token
// GitLab takes or refuse the request: a fine-grained token never reaches GitLab undecided
// because a job token came with it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const PAT = 'glpat-lib-reader'
const JOB = 'glcbt-64_running0123456789abcdef'
const OTHER = JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }' })
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

interface Case { readonly name: string, readonly headers: Record<string, string>, readonly path?: string, readonly body?: string, readonly status: number, readonly code: string | null }

// code null: forwarded untouched (GitLab reads no access token there: the request is anonymous to it).
const CASES: readonly Case[] = [
  // GitLab takes the PAT (the user name is not read): decided as that token
  // (test/security/graphql-ci-user-basic-access-token.test.ts).
  { name: 'Basic gitlab-ci-token:<PAT>', headers: { authorization: basic('gitlab-ci-token', PAT) }, status: 200, code: 'GRAPHQL_PERMISSION_MISSING' },
  { name: 'JOB-TOKEN beside Basic gitlab-ci-token:<PAT>', headers: { 'job-token': JOB, authorization: basic('gitlab-ci-token', PAT) }, status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  { name: 'JOB-TOKEN beside Basic <user>:<PAT>', headers: { 'job-token': JOB, authorization: basic('someone', PAT) }, status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  { name: 'a job token as the user name of Basic, the PAT its password', headers: { authorization: basic(JOB, PAT) }, status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  { name: '`job_token` in the URL beside Bearer <PAT>', headers: { authorization: `Bearer ${PAT}` }, path: `/api/graphql?job_token=${JOB}`, status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  { name: 'JOB-TOKEN beside `private_token` in the body', headers: { 'job-token': JOB }, body: JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }', private_token: PAT }), status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  { name: 'Basic gitlab-ci-token:<job token> beside PRIVATE-TOKEN <PAT>', headers: { 'private-token': PAT, authorization: basic('gitlab-ci-token', JOB) }, status: 401, code: 'CREDENTIAL_AMBIGUOUS' },
  // The same PAT twice is one token, decided.
  { name: 'PRIVATE-TOKEN <PAT> beside Basic <user>:<PAT>', headers: { 'private-token': PAT, authorization: basic('someone', PAT) }, status: 200, code: 'GRAPHQL_PERMISSION_MISSING' },
  // No access token GitLab reads: the job's token alone, which GitLab's GraphQL answers as anonymous.
  { name: 'Basic gitlab-ci-token:<job token>', headers: { authorization: basic('gitlab-ci-token', JOB) }, status: 200, code: null },
  { name: 'Basic <PAT>:<job token> (GitLab reads the password only)', headers: { authorization: basic(PAT, JOB) }, status: 200, code: null }
]

test('a job token beside other credentials at /api/graphql: decided on the token GitLab takes, or refused', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  g.gitlab.jobs.set(JOB, { id: 3, status: 'running', projectId: 300, userId: 8 })
  for (const c of CASES) {
    const before = g.upstream.length
    const res = await fetch(g.url + (c.path ?? '/api/graphql'), { method: 'POST', headers: { 'content-type': 'application/json', ...c.headers }, body: c.body ?? OTHER })
    const body = await res.json() as { code?: string, errors?: Array<{ extensions: { code: string } }> }
    assert.equal(res.status, c.status, c.name)
    if (c.code === null) {
      assert.equal(g.upstream.length, before + 1, `${c.name}: forwarded`)
      assert.equal(g.upstream.at(-1)!.headers.authorization, c.headers.authorization, `${c.name}: as sent`)
    } else {
      assert.equal(body.code ?? body.errors?.[0]?.extensions.code, c.code, c.name)
      assert.equal(g.upstream.length, before, `${c.name}: nothing forwarded`)
    }
  }
})

test('with GATE_NON_API_JOB_TOKENS=deny, a job token alone at /api/graphql is refused, in Basic too', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_NON_API_JOB_TOKENS: 'deny' } })
  g.gitlab.jobs.set(JOB, { id: 3, status: 'running', projectId: 300, userId: 8 })
  const sent: Array<Record<string, string>> = [{ authorization: basic('gitlab-ci-token', JOB) }, { authorization: basic(PAT, JOB) }, { 'job-token': JOB }]
  for (const headers of sent) {
    const res = await fetch(`${g.url}/api/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: OTHER })
    assert.equal(res.status, 403, JSON.stringify(headers))
    assert.equal((await res.json() as { code: string }).code, 'NON_API_JOB_TOKEN')
  }
  assert.equal(g.upstream.length, 0)
})
