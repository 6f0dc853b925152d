// GitLab's Rails middleware includes Gitlab::Jira::Middleware (lib/gitlab/jira/middleware.rb,
// config/initializers/jira.rb): on a request whose User-Agent starts with "Jira DVCS Connector"
// (any case in newer GitLab) it replaces the first "token" in Authorization with "Bearer",
// wherever that text is, before any credential is read. The gate read Authorization as sent, so:
// - `Authorization: token glpat-...` was no credential to the GraphQL enforcement (which reads
//   Bearer and Basic), while GitLab read `Bearer glpat-...`: a fine-grained token's query ran
//   unchecked;
// - Basic credentials with "token" in their base64 decode to other bytes after the rewrite: on a
//   Conan route `Basic tokenAA=<base64 of ":<job token>">` held no password for the gate (Ruby's
//   decode64 stops at the `=`) and was forwarded undecided, while GitLab decoded
//   `BearerAA=<...>` (the `=` now starts a group and is skipped) to the job token.
// With such a User-Agent the gate now reads Authorization as rewritten too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'

const JIRA = 'Jira DVCS Connector Vertigo/5.0.0-D20170810T012915'

// Project 300 (other/tools) lists nobody: the job of project 100 may not search its packages.
const CONAN = '/api/v4/projects/300/packages/conan/v1/conans/pkg/1.0/other+tools/stable/search'
// "tokenAA=" decodes to five bytes and stops at the `=` (its fourth character); "BearerAA="
// decodes to six bytes and skips the `=` (a group's first character), then reads ":<job token>".
const SHIFTED = `Basic tokenAA=${Buffer.from(`:${TOKENS.app}`).toString('base64')}`

test('a Conan route: Basic credentials as the Jira DVCS rewrite leaves them are read', async (t) => {
  const g = await startTestGate(t)
  for (const agent of [JIRA, 'JIRA DVCS Connector/4.0', 'jira dvcs connector']) {
    const answer = await send(g.url, 'GET', CONAN, { authorization: SHIFTED, 'user-agent': agent })
    assert.equal(answer.status, 403, `${agent}: ${answer.text}`)
    assert.equal(answer.json().code, 'NOT_ALLOWLISTED')
  }
  // `User_Agent` is HTTP_USER_AGENT to Puma too.
  const underscore = await send(g.url, 'GET', CONAN, { authorization: SHIFTED, user_agent: JIRA })
  assert.equal(underscore.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.filter(s => s.url === CONAN).length, 0, 'nothing reached GitLab')
  // Without that User-Agent GitLab reads no password there either: forwarded as before.
  const plain = await send(g.url, 'GET', CONAN, { authorization: SHIFTED, 'user-agent': 'conan/2.0' })
  assert.equal(plain.status, 200, plain.text)
  // `token <job token>` is the job token either way.
  const scheme = await send(g.url, 'GET', CONAN, { authorization: `token ${TOKENS.app}`, 'user-agent': JIRA })
  assert.equal(scheme.json().code, 'NOT_ALLOWLISTED')
})

const PATS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const OTHER = '{ project(fullPath: "other/tools") { id } }'

test('GraphQL: `Authorization: token <PAT>` from a Jira DVCS User-Agent is the Bearer GitLab reads', async (t) => {
  const g = await startGraphqlGate(t, { tokens: PATS })
  const answer = await postGraphql(g.url, { query: OTHER }, { authorization: 'token glpat-lib-reader', 'user-agent': JIRA })
  assert.equal(answer.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', JSON.stringify(answer.body))
  assert.equal(g.upstream.length, 0, 'refused, not forwarded')
  // A Bearer the rewrite changes is two tokens: GitLab's is not the one the gate would check.
  const changed = await postGraphql(g.url, { query: OTHER }, { authorization: 'Bearer glpat-xtokeny', 'user-agent': JIRA })
  assert.equal(changed.status, 401, changed.text)
  assert.equal(changed.body.code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal(g.upstream.length, 0)
  // Another User-Agent: GitLab reads no token in `token ...`, and the request passes as before.
  await postGraphql(g.url, { query: OTHER }, { authorization: 'token glpat-lib-reader', 'user-agent': 'curl/8' })
  assert.equal(g.upstream.length, 1)
})
