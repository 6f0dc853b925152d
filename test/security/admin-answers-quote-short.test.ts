// Finding: the gate's GraphQL allowlist mutations quoted the client's text whole in their
// payload `errors` (a target path no group or project has, a policy name or package format that
// is none), and a document hands one variable to each of its aliased mutations: a 900 KB
// `targetGroupPath` named by 100 aliased `ciJobTokenScopeRemoveGroup` was answered with 90 MB,
// from any Maintainer of a project (any user, of a project of their own), and held by the gate
// until the client read it. Client text is quoted up to 100 characters, then its length.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const maintainer = { 'private-token': USERS.maintainer, 'content-type': 'application/json' }
const lead = { ...maintainer, 'private-token': USERS.lead }
// Within GitLab's 10,000 characters.
const ALIASES = 60

function noGroups (_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' })
  res.end('{"message":"404 Group Not Found"}')
}

/** `ALIASES` aliased `field(input: {<input>})`, one variable `$v` of `type` for all. */
function aliased (field: string, input: string, type: string, value: unknown): string {
  const fields = Array.from({ length: ALIASES }, (_, i) => `a${i}: ${field}(input: {${input}}) { errors }`)
  return JSON.stringify({ query: `mutation($v: ${type}) { ${fields.join(' ')} }`, variables: { v: value } })
}

/** Each alias answered with `error`; the whole answer a few KB per alias. */
function eachAnswered (res: Awaited<ReturnType<typeof send>>, error: string): void {
  assert.equal(res.status, 200, res.text.slice(0, 300))
  assert.ok(res.text.length < ALIASES * 2048, `an answer of ${res.text.length} bytes`)
  const data = res.json().data as Record<string, { errors: string[] }>
  assert.equal(Object.keys(data).length, ALIASES)
  for (const payload of Object.values(data)) assert.deepEqual(payload.errors, [error])
}

test('admin answers: a long target path named by every alias is quoted short', async t => {
  const g = await adminGate(t)
  g.respond = noGroups
  const path = 'a'.repeat(900_000)
  const res = await send(g.url, 'POST', '/api/graphql', maintainer, aliased('ciJobTokenScopeRemoveGroup', 'projectPath: "acme/lib", targetGroupPath: $v', 'ID!', path))
  eachAnswered(res, `targetGroupPath "${'a'.repeat(100)}... (900000 characters)" is not a group the caller can see`)
})

test('admin answers: long policy names and package formats named by every alias are quoted short', async t => {
  const g = await adminGate(t)
  g.respond = noGroups
  const name = 'p'.repeat(40_000)
  const policies = await send(g.url, 'POST', '/api/graphql', lead, aliased('ciJobTokenScopeUpdatePolicies',
    'projectPath: "acme/lib", targetPath: "acme/platform/app", defaultPermissions: false, jobTokenPolicies: [$v]', 'CiJobTokenScopePolicies!', name))
  eachAnswered(policies, `jobTokenPolicies[0] "${'p'.repeat(100)}... (40000 characters)" is not a known job token policy`)
  const format = 'f'.repeat(40_000)
  const rules = await send(g.url, 'POST', '/api/graphql', maintainer, aliased('updateJobTokenPermissions',
    'projectPath: "acme/lib", packageRegistry: [{format: $v, read: false}]', 'String!', format))
  assert.equal(rules.status, 200, rules.text.slice(0, 300))
  assert.ok(rules.text.length < ALIASES * 2048, `an answer of ${rules.text.length} bytes`)
  for (const payload of Object.values(rules.json().data as Record<string, { errors: string[] }>)) {
    assert.match(payload.errors[0]!, new RegExp(`^packageRegistry\\.f{100}\\.\\.\\. \\(40000 characters\\) "f{100}\\.\\.\\. \\(40000 characters\\)" is not a known package format`))
  }
})
