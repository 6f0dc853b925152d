// An audit event's request id is its trusted proxy's X-Request-Id, and `import-<uuid>` is the one
// `job-token-gate import-allowlists` gives every event of an operator's run. docs/deploy.md has the
// ingress controller's pods listed in GATE_TRUSTED_PROXIES (as a pod range, which holds CI job
// pods too, and the sidecar's API port is open to every pod), and ingress-nginx passes a client's
// own X-Request-ID on as its id: any Maintainer then stamped a change of theirs with an operator's
// import run's id, and it read as part of that run. The gate takes no incoming id of that form,
// from any peer: its own is used instead.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

const FORGED = 'import-0b6f1e0a-5b8c-4c51-9d2e-7a3f1c2d4e5f'

test('a trusted peer\'s X-Request-Id in the import runs\' form never names an audit event', async (t) => {
  // The test connects from 127.0.0.1, a trusted proxy by default.
  const g = await adminGate(t)
  for (const id of [FORGED, 'IMPORT-0b6f1e0a-5b8c-4c51-9d2e-7a3f1c2d4e5f', 'import-']) {
    const res = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist',
      { 'private-token': USERS.lead, 'content-type': 'application/json', 'x-request-id': id }, JSON.stringify({ target_project_id: 600 }))
    assert.ok(res.status === 201 || res.status === 409, res.text)
    assert.notEqual(res.headers['x-request-id'], id)
    const removed = await send(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope/allowlist/600', { 'private-token': USERS.lead, 'x-request-id': id })
    assert.equal(removed.status, 204, removed.text)
  }
  const events = (await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })).json() as Array<{ request_id: string }>
  assert.ok(events.length >= 6, JSON.stringify(events))
  for (const e of events) assert.doesNotMatch(e.request_id, /^import-/i, 'a caller named its change as part of an operator\'s import run')
  for (const line of g.logs.filter(l => l.audit === true)) assert.doesNotMatch(String(line.request_id), /^import-/i)

  // A proxy's own id is still the request's.
  const own = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist',
    { 'private-token': USERS.lead, 'content-type': 'application/json', 'x-request-id': 'c0ffee0123456789abcdef0123456789' }, JSON.stringify({ target_project_id: 600 }))
  assert.equal(own.status, 201, own.text)
  const after = (await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })).json() as Array<{ request_id: string }>
  assert.equal(after[0]?.request_id, 'c0ffee0123456789abcdef0123456789')
})
