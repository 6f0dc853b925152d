// The operator registers the permissions of a fine-grained token GitLab will not describe, under
// the token's SHA-256 (/api/v4/gate/graphql_token_scopes/:sha256): a change of what that token
// may do at /api/graphql and on the configuration API. Its log line named neither the hash nor
// the permissions (`/gate/graphql_token_scopes/:sha256`, status 200), and the registry keeps no
// history: who was granted what, or had it taken away, was nowhere to be read afterwards (a leaked
// operator token's registration of its holder's own token included). A change is now an audit line
// (`"audit": true`) naming the hash, the action and the registration; a hash is no token, and a
// path segment that is not one is still never written.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { startGraphqlGate } from '../helpers/graphql-gate.ts'

const ADMIN = 'gate-operator-secret'
const TOKEN = 'glpat-fine-grained-registered'
const HASH = createHash('sha256').update(TOKEN).digest('hex')

test('token registry: each change is an audit line naming the hash and the registration', async (t) => {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN } })
  const call = async (method: string, path: string, body?: unknown): Promise<number> => (await fetch(`${g.url}/api/v4/gate/graphql_token_scopes${path}`, {
    method,
    headers: { 'private-token': ADMIN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })).status
  const registration = { user_id: 51, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist'], project_id: 200 }] }
  assert.equal(await call('PUT', `/${HASH}`, registration), 200)
  assert.equal(await call('DELETE', `/${HASH}`), 204)
  // A token pasted where the hash goes is refused, and never written.
  assert.equal(await call('PUT', `/${TOKEN}`, registration), 400)

  const audit = g.logs.filter(l => l.audit === true)
  assert.deepEqual(audit.map(l => [l.action, l.token_sha256]), [['register_token_scopes', HASH], ['remove_token_scopes', HASH]])
  assert.deepEqual((audit[0]!.after as { granular_scopes: unknown }).granular_scopes, [{ ...registration.granular_scopes[0], group_id: null }])
  assert.equal(audit[0]!.before, null)
  assert.deepEqual(audit[1]!.before, audit[0]!.after, 'what was removed')
  assert.deepEqual(audit[0]!.actor, { type: 'operator' })
  assert.equal(audit[1]!.after, null)
  assert.equal(JSON.stringify(g.logs).includes(TOKEN), false, 'no token in any line')
})
