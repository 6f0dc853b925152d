// Finding: a project's `ml_model` rule (`write`/`delete: "maintainer"`) bound the model registry's
// REST routes only, while GitLab's GraphQL writes the same registry (app/graphql/mutations/ml/:
// mlModelCreate, mlModelEdit, mlModelDelete, mlModelDestroy, mlModelVersionCreate,
// mlModelVersionEdit, behind `write_model_registry`, which Developers have): the model registry
// pages of GitLab's UI send them with the browser session, and a Developer's token or session
// created, changed and deleted models where the project keeps that to Maintainers. Each such
// mutation's `projectPath` is now held to the rule, in every reading of the request.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { gateWithPackageRule, adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import type { TestGate } from '../helpers/gate.ts'

const json = { 'content-type': 'application/json' }
const session = (token: string): Record<string, string> => ({ cookie: `_gitlab_session=${token}`, 'x-csrf-token': 'csrf' })

const world = async (t: TestContext, rule: Record<string, string>): Promise<TestGate> => await gateWithPackageRule(t, 'ml_model', rule)

const CREATE = 'mutation { mlModelCreate(input: {projectPath: "acme/lib", name: "churn"}) { model { id } errors } }'
const WRITES: ReadonlyArray<readonly [string, unknown]> = [
  ['a literal projectPath', { query: CREATE }],
  ['the input in a variable', { query: 'mutation M($input: MlModelCreateInput!) { mlModelCreate(input: $input) { errors } }', variables: { input: { projectPath: 'ACME/Lib', name: 'churn' } } }],
  ['projectPath in a variable, given as a JSON string', { query: 'mutation M($p: ID!) { mlModelEdit(input: {projectPath: $p, name: "churn", description: "x"}) { errors } }', variables: JSON.stringify({ p: 'acme/lib' }) }],
  ['a variable\'s default, through a fragment and an alias', { query: 'mutation M($p: ID! = "acme/lib") { ...F } fragment F on Mutation { v: mlModelVersionCreate(input: {projectPath: $p, modelId: "gid://gitlab/Ml::Model/1"}) { errors } }' }],
  ['an inline fragment', { query: 'mutation { ... on Mutation { mlModelVersionEdit(input: {projectPath: "acme/lib", modelId: "gid://gitlab/Ml::Model/1", version: "1.0.0", description: "x"}) { errors } } }' }],
  ['one operation of a batch', [{ query: '{ currentUser { id } }' }, { query: CREATE }]]
]
const DELETES: ReadonlyArray<readonly [string, unknown]> = [
  ['mlModelDelete', { query: 'mutation { mlModelDelete(input: {projectPath: "acme/lib", id: "gid://gitlab/Ml::Model/1"}) { errors } }' }],
  ['mlModelDestroy, named by operationName', { query: 'query Q { currentUser { id } } mutation D { mlModelDestroy(input: {projectPath: "acme/lib", id: "gid://gitlab/Ml::Model/1"}) { message } }', operationName: 'D' }],
  ['an operationName the document does not have', { query: 'mutation { mlModelDelete(input: {projectPath: "acme/lib", id: "gid://gitlab/Ml::Model/1"}) { errors } }', operationName: 'Other' }]
]

test('a Developer\'s model registry mutations are held to the ml_model rule, by token or session', async t => {
  const g = await world(t, { write: 'maintainer' })
  const before = g.seen.length
  for (const [name, body] of [...WRITES, ...DELETES]) {
    for (const [caller, headers] of [['token', { 'private-token': USERS.developer }], ['session', session(USERS.developer)]] as const) {
      const res = await send(g.url, 'POST', '/api/graphql', { ...json, ...headers }, JSON.stringify(body))
      assert.equal(res.status, 403, `${name} (${caller}): ${res.text}`)
      assert.equal(res.json().code, 'PACKAGE_MAINTAINER_ONLY', `${name} (${caller})`)
    }
  }
  assert.deepEqual(g.seen.slice(before).filter(s => s.url.startsWith('/api/graphql')).map(s => s.url), [], 'no mutation reached GitLab')
  // A Maintainer's go to GitLab.
  for (const [name, body] of [...WRITES, ...DELETES]) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.maintainer }, JSON.stringify(body))
    assert.equal(res.status, 200, `${name}: ${res.text}`)
  }
  assert.equal(g.seen.slice(before).filter(s => s.url.startsWith('/api/graphql')).length, WRITES.length + DELETES.length)
})

test('a delete-only rule holds model deletes, not writes', async t => {
  const g = await world(t, { delete: 'maintainer' })
  for (const [name, body] of DELETES) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, JSON.stringify(body))
    assert.equal(res.status, 403, `${name}: ${res.text}`)
  }
  for (const [name, body] of WRITES) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, JSON.stringify(body))
    assert.equal(res.status, 200, `${name}: ${res.text}`)
  }
})

test('queries, other projects and version deletes by id are GitLab\'s; what cannot be read is refused', async t => {
  const g = await world(t, { write: 'maintainer' })
  const passes: ReadonlyArray<readonly [string, unknown]> = [
    ['a query of the registry', { query: '{ project(fullPath: "acme/lib") { mlModels { nodes { id } } } }' }],
    ['a project without a rule', { query: 'mutation { mlModelCreate(input: {projectPath: "acme/platform/app", name: "churn"}) { errors } }' }],
    ['another operation than the one named', { query: 'query Q { currentUser { id } } mutation D { mlModelCreate(input: {projectPath: "acme/lib", name: "x"}) { errors } }', operationName: 'Q' }],
    // The version's project is not in the request; GitLab's delete asks destroy_package (Maintainers) of its package.
    ['mlModelVersionDelete', { query: 'mutation { mlModelVersionDelete(input: {id: "gid://gitlab/Ml::ModelVersion/1"}) { errors } }' }]
  ]
  for (const [name, body] of passes) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, JSON.stringify(body))
    assert.equal(res.status, 200, `${name}: ${res.text}`)
  }
  const unreadable: ReadonlyArray<readonly [string, unknown]> = [
    ['projectPath not text', { query: 'mutation { mlModelCreate(input: {projectPath: ["acme/lib"], name: "churn"}) { errors } }' }],
    ['a variable not given', { query: 'mutation M($p: ID!) { mlModelCreate(input: {projectPath: $p, name: "churn"}) { errors } }' }],
    ['a document that does not parse', { query: 'mutation { mlModelCreate(input: {projectPath: "acme/lib" name: "churn"} { errors } }' }]
  ]
  for (const [name, body] of unreadable) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, JSON.stringify(body))
    assert.equal(res.status, 400, `${name}: ${res.text}`)
    assert.equal(res.json().code, 'GRAPHQL_NOT_INSPECTABLE', name)
  }
})

test('a body over 1 MiB naming a model registry mutation is refused, before or after the limit', async t => {
  const g = await world(t, { write: 'maintainer' })
  const padding = ' '.repeat(1 << 20)
  for (const [name, text] of [['first', JSON.stringify({ query: CREATE + padding })], ['past the limit', JSON.stringify({ query: padding + CREATE })]] as const) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, text)
    assert.equal(res.status, 413, `${name}: ${res.text.slice(0, 300)}`)
  }
})

test('shadowed package rules log the refusal and forward the mutation', async t => {
  const g = await adminGate(t, { GATE_SHADOW_RESOURCES: 'packages' })
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { ml_model: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, JSON.stringify({ query: CREATE }))
  assert.equal(res.status, 200, res.text)
  assert.ok(g.seen.some(s => s.url.startsWith('/api/graphql')), 'forwarded')
})
