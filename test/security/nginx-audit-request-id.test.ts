// The configuration API stamps each audit event (store and log line) with its request id: a
// trusted proxy's X-Request-Id, else the gate's own. The shipped nginx configuration is such a
// proxy (GATE_TRUSTED_PROXIES must name it), and its locations for the gate's endpoints passed
// the client's X-Request-Id on as it came: any Maintainer chose the request id of their change's
// audit event, `import-<uuid>` of an operator's import run included, or the id of another
// request, so that the event read as part of that run, and the log lines joined to it by id were
// another request's. nginx now sends its own ($request_id) in every location that reaches the gate.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

const FORGED = 'import-0b6f1e0a-5b8c-4c51-9d2e-7a3f1c2d4e5f'

test('the shipped nginx configuration gives the gate its own request id, never the client\'s', { skip: needsNginx }, async (t) => {
  const g = await adminGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })

  const res = await send(base, 'POST', '/api/v4/projects/200/job_token_scope/allowlist',
    { 'private-token': USERS.lead, 'content-type': 'application/json', 'x-request-id': FORGED }, JSON.stringify({ target_project_id: 600 }))
  assert.equal(res.status, 201, res.text)
  const events = (await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })).json()
  assert.equal(events[0].action, 'add_project_to_allowlist')
  assert.notEqual(events[0].request_id, FORGED, 'the client chose the audit event\'s request id')
  assert.match(events[0].request_id, /^[0-9a-f]{32}$/, 'nginx\'s $request_id')
  const line = g.logs.find(l => l.audit === true)
  assert.equal(line?.request_id, events[0].request_id)

  // GraphQL's location too.
  const mutation = await send(base, 'POST', '/api/graphql', { 'private-token': USERS.lead, 'content-type': 'application/json', 'x-request-id': FORGED },
    JSON.stringify({ query: 'mutation { ciJobTokenScopeRemoveProject(input: { projectPath: "acme/lib", targetProjectPath: "acme/platform/web" }) { errors } }' }))
  assert.equal(mutation.status, 200, mutation.text)
  assert.deepEqual(mutation.json().data?.ciJobTokenScopeRemoveProject?.errors, [], mutation.text)
  const after = (await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN })).json()
  assert.equal(after[0].action, 'remove_project_allowlist_entry')
  assert.notEqual(after[0].request_id, FORGED)
})
