// Regression: the gate read a global ID only in the form `gid://gitlab/<Model>/<digits>`. GitLab
// reads one with the globalid gem and ActiveRecord: `gid://gitlab/::Project/300` (a Ruby constant
// name), a query or fragment after the id (`?x=1`, `#x`, the gem's params), a user or port before
// the host, a percent-encoded id (`%33%30%30`), an id ActiveRecord reads as 300 (`300abc`), and
// the URL-safe base64 of a global ID (GlobalID#to_param) all find project 300. The gate took each
// for text naming no target, and allowed a token reaching project 200 alone to create a
// vulnerability in project 300. A `gid://gitlab/Namespace/20` (group 20, the namespaces being one
// table) was read as another object, whose project or group the gate does not look up.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readGlobalId } from '../../src/graphql/explain.ts'
import { postGraphql, startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-writer': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability', 'update_ci_cd_setting', 'read_group'], project_id: 200 }] },
  'glpat-acme-writer': { userId: 8, scopes: [{ access: 'selected_memberships', permissions: ['create_vulnerability', 'read_group'], group_id: 10 }] }
}
const CREATE = 'mutation($p: ProjectID!) { vulnerabilityCreate(input: { project: $p, name: "n" }) { errors } }'
const b64 = (text: string): string => Buffer.from(text).toString('base64url')

const OTHER = [
  'gid://gitlab/::Project/300',
  'gid://gitlab/Object::Project/300',
  'gid://gitlab/Project/300?x=1',
  'gid://gitlab/Project/300#x',
  'gid://someone@gitlab:443/Project/300',
  'gid://gitlab/Project/%33%30%30',
  b64('gid://gitlab/Project/300'),
  Buffer.from('gid://gitlab/Project/300').toString('base64')
]

test('global IDs are read as GitLab reads them', () => {
  for (const gid of OTHER) assert.deepEqual(readGlobalId(gid), { model: 'Project', id: '300' }, gid)
  assert.deepEqual(readGlobalId('gid://gitlab/Ci::Runner/1'), { model: 'Ci::Runner', id: '1' })
  assert.deepEqual(readGlobalId('gid://gitlab/Project/300abc'), { model: 'Project', id: '300abc' })
  for (const text of ['acme/lib', 'gid:/gitlab/Project/1', 'gid://gitlab/Project', 'gid://gitlab/Project/', ' gid://gitlab/Project/1', 'gid://gitlab/Project/1 is the one', 'gid://gitlab/Project/1\n', 'Z2lkOnRoaW5n', b64('hello'), '']) assert.equal(readGlobalId(text), null, text)
})

for (const schema of [false, true]) {
  test(`a project's global ID in another spelling is checked at that project (${schema ? 'with' : 'without'} the schema)`, async (t) => {
    const g = await startGraphqlGate(t, { tokens: TOKENS, schema })
    const lib = { 'private-token': 'glpat-lib-writer' }
    for (const p of [...OTHER, 'gid://gitlab/Project/300abc', 'gid://gitlab/Project/200abc']) {
      const answer = await postGraphql(g.url, { query: CREATE, variables: { p } }, lib)
      assert.equal(answer.body?.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', `${p}: ${answer.text}`)
    }
    // A group's namespace: looked up, and checked as that group.
    const acme = { 'private-token': 'glpat-acme-writer' }
    const other = await postGraphql(g.url, { query: 'mutation { vulnerabilityCreate(input: { project: "gid://gitlab/Namespace/20", name: "n" }) { errors } }' }, acme)
    assert.equal(other.body?.errors?.[0]?.extensions?.target, 'namespace 20', other.text)
    assert.equal(g.upstream.length, 0)
    // The token's own project, however written, goes on to GitLab.
    for (const p of ['gid://gitlab/Project/200', 'gid://gitlab/::Project/200', b64('gid://gitlab/Project/200'), 'gid://gitlab/Project/0200']) {
      const answer = await postGraphql(g.url, { query: CREATE, variables: { p } }, lib)
      assert.deepEqual(answer.body, { data: { upstream: true } }, `${p}: ${answer.text}`)
    }
    const own = await postGraphql(g.url, { query: 'mutation { vulnerabilityCreate(input: { project: "gid://gitlab/Namespace/10", name: "n" }) { errors } }' }, acme)
    assert.deepEqual(own.body, { data: { upstream: true } }, own.text)
  })
}
