// Finding: the gate's GraphQL mutations echo their input's clientMutationId in the payload, as
// GitLab's do, whatever its length, and a document hands one variable to each of its aliased
// mutations: 150 aliased `ciJobTokenScopeRemoveGroup` selecting `clientMutationId`, all naming one
// 900 KB variable, were answered with 135 MB, from any Maintainer of a project (any user, of a
// project of their own), held whole by the gate until the client read it. A clientMutationId over
// 255 characters is now the field's error, GRAPHQL_CLIENT_MUTATION_ID_TOO_LONG, before GitLab is
// asked anything; a shorter one is echoed as before.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const maintainer = { 'private-token': USERS.maintainer, 'content-type': 'application/json' }
// Within GitLab's 10,000 characters.
const ALIASES = 60

function noGroups (_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' })
  res.end('{"message":"404 Group Not Found"}')
}

function aliased (field: string, input: string, id: string): string {
  const fields = Array.from({ length: ALIASES }, (_, i) => `a${i}: ${field}(input: {${input}, clientMutationId: $id}) { clientMutationId }`)
  return JSON.stringify({ query: `mutation($id: String) { ${fields.join(' ')} }`, variables: { id } })
}

test('admin GraphQL: a long clientMutationId named by every alias is refused, not echoed', async t => {
  const g = await adminGate(t)
  g.respond = noGroups
  for (const [field, input] of [
    ['ciJobTokenScopeRemoveGroup', 'projectPath: "acme/lib", targetGroupPath: "nowhere"'],
    ['updateJobTokenPermissions', 'projectPath: "acme/lib", packageRegistry: []']
  ] as const) {
    const res = await send(g.url, 'POST', '/api/graphql', maintainer, aliased(field, input, 'c'.repeat(900_000)))
    assert.equal(res.status, 200, res.text.slice(0, 300))
    assert.ok(res.text.length < ALIASES * 1024, `an answer of ${res.text.length} bytes`)
    const body = res.json() as { data: Record<string, unknown>, errors: Array<{ extensions: { code: string } }> }
    assert.equal(body.errors.length, ALIASES)
    for (const error of body.errors) assert.equal(error.extensions.code, 'GRAPHQL_CLIENT_MUTATION_ID_TOO_LONG')
    for (const payload of Object.values(body.data)) assert.equal(payload, null)
  }
})

test('admin GraphQL: a clientMutationId of 255 characters is echoed', async t => {
  const g = await adminGate(t)
  g.respond = noGroups
  const id = 'c'.repeat(255)
  const res = await send(g.url, 'POST', '/api/graphql', maintainer, JSON.stringify({
    query: 'mutation($id: String) { ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "nowhere", clientMutationId: $id}) { clientMutationId errors } }',
    variables: { id }
  }))
  assert.equal(res.status, 200, res.text.slice(0, 300))
  const payload = (res.json().data as Record<string, { clientMutationId: string, errors: string[] }>).ciJobTokenScopeRemoveGroup!
  assert.equal(payload.clientMutationId, id)
  assert.equal(payload.errors.length, 1)
})
