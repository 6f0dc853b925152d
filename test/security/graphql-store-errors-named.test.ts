// Finding: a configuration change through GitLab's GraphQL endpoint that the grants store could
// not make (Redis unreachable, its data lost, a write that lost every retry to concurrent ones)
// answered `internal error` (GATE_INTERNAL_ERROR), where REST answers 503
// GRANTS_STORE_UNAVAILABLE ("try again later"): nothing told the client the change was not
// made for a reason it may wait out, rather than a fault of the gate. A query's
// `jobTokenPermissions` answered the store's failure with its message for the logs, the Redis
// client's own error (a node's address, a key). A field's GateError is now its public message
// and code, as REST answers it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { adminGate, ADMIN } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const STORE_DOWN = '503 Service Unavailable - job token scopes cannot be checked right now; try again later'

test('GraphQL names a store that cannot answer as REST does, never an internal error nor the message for the logs', async t => {
  const redis = await startRedis(t)
  const g = await adminGate(t, { GATE_REDIS_URL: redis.url })
  await redis.stop()
  const ask = async (query: string): Promise<{ errors?: Array<{ message: string, extensions?: { code?: string } }>, data?: unknown }> => {
    const res = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'application/json', 'private-token': ADMIN }, JSON.stringify({ query }))
    assert.equal(res.status, 200, res.text)
    return res.json() as never
  }

  const removal = await ask('mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/app" }) { errors } }')
  assert.deepEqual(removal.data, { ciJobTokenScopeRemoveProject: null })
  assert.equal(removal.errors?.length, 1)
  assert.equal(removal.errors[0]!.extensions?.code, 'GRANTS_STORE_UNAVAILABLE')
  assert.equal(removal.errors[0]!.message, STORE_DOWN)

  const rules = await ask('mutation { updateJobTokenPermissions(input: { projectPath: "acme/lib", packageRegistry: [{ format: "maven", read: false, write: MAINTAINER }] }) { errors } }')
  assert.equal(rules.errors?.[0]?.extensions?.code, 'GRANTS_STORE_UNAVAILABLE', JSON.stringify(rules))

  const read = await ask('{ project(fullPath: "acme/lib") { fullPath jobTokenPermissions { jobTokenPoliciesEnabled } } }')
  assert.equal(read.errors?.length, 1, JSON.stringify(read))
  assert.equal(read.errors[0]!.extensions?.code, 'GRANTS_STORE_UNAVAILABLE')
  assert.equal(read.errors[0]!.message, STORE_DOWN)
  assert.doesNotMatch(JSON.stringify(read), /enableOfflineQueue|grants store unavailable|ECONNREFUSED|127\.0\.0\.1/)
})
