// Finding: a writable fine-grained token registry file (GATE_GRAPHQL_TOKEN_REGISTRY_FILE) was read
// once, at start, and written whole at each change. Two gates on one file (a second replica on a
// shared volume, a rollout whose pods overlap) each kept their own copy: a registration removed
// (or narrowed) through one gate still let the token's GraphQL requests through the other with the
// permissions it no longer has, for as long as that gate ran, and the other's next change wrote its
// copy over the file, bringing the removed registration back for every gate started after. The
// registry now remembers the file as it last read or wrote it and looks again before each change
// and each read of a registration: a file another process wrote makes it answer no registration
// (GitLab's hidden tokens are refused, GRAPHQL_TOKEN_SCOPES_HIDDEN) and refuse changes
// (GRAPHQL_TOKEN_REGISTRY_CHANGED), until the gate is restarted and reads the file anew.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postGraphql, startGraphqlGate, type GraphqlGate } from '../helpers/graphql-gate.ts'

const ADMIN = 'gate-operator-secret-of-the-registry-test'
const TOKEN = 'glpat-registered-on-both-replicas'
const HASH = createHash('sha256').update(TOKEN).digest('hex')
const OTHER = createHash('sha256').update('glpat-another-token').digest('hex')
const REGISTRATION = { user_id: 7, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
const READ_LIB = { query: '{ project(fullPath: "acme/lib") { id } }' }

async function gateOn (t: TestContext, file: string): Promise<GraphqlGate> {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN, GATE_GRAPHQL_TOKEN_REGISTRY_FILE: file } })
  // GitLab will not describe the token: only the registration can.
  g.tokenLookupFails = 403
  return g
}

async function call (g: GraphqlGate, method: string, hash: string, body?: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(`${g.url}/api/v4/gate/graphql_token_scopes/${hash}`, {
    method,
    headers: { 'private-token': ADMIN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

function registryFile (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'token-registry-shared-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'registry.json')
  writeFileSync(file, JSON.stringify({ [HASH]: REGISTRATION }), { mode: 0o600 })
  return file
}

test('a registration removed through one gate is not honoured by another gate on the same file', async t => {
  const file = registryFile(t)
  const one = await gateOn(t, file)
  const other = await gateOn(t, file)
  assert.equal((await call(one, 'DELETE', HASH)).status, 204)
  assert.equal((await postGraphql(one.url, READ_LIB, { 'private-token': TOKEN })).body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
  // The other gate does not answer with its copy.
  assert.equal((await postGraphql(other.url, READ_LIB, { 'private-token': TOKEN })).body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
  // Nor does it write its copy over the file.
  const change = await call(other, 'PUT', OTHER, REGISTRATION)
  assert.equal(change.status, 409, JSON.stringify(change.body))
  assert.equal(change.body.code, 'GRAPHQL_TOKEN_REGISTRY_CHANGED')
  assert.ok(!readFileSync(file, 'utf8').includes(HASH), 'the removal stands in the file')
  // The gate that wrote keeps working.
  assert.equal((await call(one, 'PUT', OTHER, REGISTRATION)).status, 200)
})

test('a registration another gate removed is not answered from what this gate cached of it', async t => {
  const file = registryFile(t)
  const one = await gateOn(t, file)
  const other = await gateOn(t, file)
  // The other gate answers the token once by its registration, and keeps that answer.
  const before = await postGraphql(other.url, READ_LIB, { 'private-token': TOKEN })
  assert.notEqual(before.body?.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', JSON.stringify(before.body))
  assert.equal((await call(one, 'DELETE', HASH)).status, 204)
  // The file changed under it: what it kept of the registration is gone with it.
  assert.equal((await postGraphql(other.url, READ_LIB, { 'private-token': TOKEN })).body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
})
