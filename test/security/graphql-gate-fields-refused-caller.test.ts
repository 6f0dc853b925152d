// Finding: the gate's own GraphQL fields (`project { jobTokenPermissions }`, the `ciJobTokenScope*`
// allowlist mutations) each ask GitLab the caller's role at their project, and a refusal is not
// kept (a token may be created the next moment). A token GitLab refuses, any string at all, was
// asked about at every field: one request of 150 aliased mutations, or 100 aliased `project`
// reads, within the complexity bound of 300, cost GitLab 150 (100) calls, all at once for a
// query's fields, with no account. The first
// field's lookup now answers alone; when GitLab refuses the caller there, the other fields are
// refused without asking.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, USERS } from '../helpers/admin-gate.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const json = { 'content-type': 'application/json' }
const gql = (query: string): string => JSON.stringify({ query })
// A token GitLab signs no one in with: 401 to `GET /projects/:id` and `/user`.
const REFUSED = 'glpat-refused-by-gitlab-0000'

test('graphql: the gate\'s fields ask GitLab about a refused caller once per request, not once per field', async t => {
  const g = await startTestGate(t, { GATE_ADMIN_TOKEN: ADMIN }, {
    users: { [USERS.maintainer]: { id: 41, username: 'mia', access: { 200: 40 } } },
    deployTokens: [REFUSED]
  })
  const lookups = async (): Promise<number> => total((await scrape(g.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'project_access' })
  const reads = '{ ' + Array.from({ length: 100 }, (_, i) => `p${i}: project(fullPath: "acme/p${i}") { jobTokenPermissions { jobTokenPoliciesEnabled } }`).join(' ') + ' }'
  // Within GitLab's 10,000 characters: the inputs are variables.
  const writes = 'mutation(' + Array.from({ length: 100 }, (_, i) => `$i${i}: CiJobTokenScopeAddProjectInput!`).join(' ') + ') { ' + Array.from({ length: 100 }, (_, i) => `m${i}: ciJobTokenScopeAddProject(input: $i${i}) { errors }`).join(' ') + ' }'
  const inputs = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`i${i}`, { projectPath: `acme/p${i}`, targetProjectPath: 'other/tools' }]))
  for (const [name, query, fields] of [['query', reads, 100], ['mutation', writes, 100]] as const) {
    const before = await lookups()
    const res = await send(g.url, 'POST', '/api/graphql', { 'private-token': REFUSED, ...json }, name === 'query' ? gql(query) : JSON.stringify({ query, variables: inputs }))
    assert.equal(res.status, 200, res.text.slice(0, 300))
    const errors = res.json().errors as Array<{ extensions: { code: string } }>
    assert.equal(errors.length, fields, name)
    assert.ok(errors.every(e => e.extensions.code === "ADMIN_UNAUTHENTICATED"), `${name}: ${JSON.stringify(errors.slice(0, 2))}`)
    assert.equal(await lookups() - before, 1, `${name}: the caller asked about once`)
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // A caller GitLab signs in still has each field answered at its own project.
  const before = await lookups()
  const mine = await send(g.url, 'POST', '/api/graphql', { 'private-token': USERS.maintainer, ...json }, gql('{ a: project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } b: project(fullPath: "other/tools") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'))
  assert.equal(mine.status, 200, mine.text)
  assert.ok(mine.json().data.a !== null, mine.text)
  assert.equal(mine.json().data.b, null)
  assert.equal(mine.json().errors[0].extensions.code, 'ADMIN_PROJECT_NOT_FOUND')
  assert.equal(await lookups() - before, 2)
})
