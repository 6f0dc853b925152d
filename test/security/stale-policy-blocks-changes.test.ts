// Finding: every write through the configuration API validated the whole document against the
// catalog's policies as it is now, the entries it carried over unchanged included. An entry stored
// with a policy the catalog no longer accepts (`read_containers`, accepted before GitLab deprecated
// it, or a policy a reloaded catalog dropped) made every change to its project 400
// ADMIN_VALIDATION_FAILED: another entry could not be removed, nor the inbound scope turned on,
// nor a format kept to Maintainers, so a Maintainer revoking a project's access (over REST or
// GraphQL) was refused, and the project's jobs kept it. The policies of the entries a change adds
// or changes are checked; the entries it carries over are checked for their shape, as documents
// read back from the store are.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createInstanceSettings, validateProjectGrants, type AllowlistEntry } from '../../src/grants/model.ts'
import { ADMIN, adminGate, USERS } from '../helpers/admin-gate.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const entry = (targetType: 'project' | 'group', targetId: number, policies: string[] | null): AllowlistEntry => ({
  targetType, targetId, defaultPermissions: policies === null, jobTokenPolicies: policies ?? [], addedBy: { id: 1 }, createdAt: '2025-01-01T00:00:00Z'
})

/** acme/lib (200): acme/platform/web's jobs (600) hold a policy stored before it was deprecated; other/tools' (300) default permissions. */
async function gateWithStalePolicy (t: TestContext): Promise<TestGate> {
  const g = await adminGate(t)
  await g.store.put(validateProjectGrants({
    projectId: 200,
    projectPath: 'acme/lib',
    inboundEnabled: true,
    entries: [entry('project', 600, ['read_containers', 'read_packages']), entry('project', 300, null)]
  }, { settings: createInstanceSettings() }))
  g.gate.grants.flush()
  return g
}

const toolsRead = async (g: TestGate): Promise<number> =>
  (await fetch(`${g.url}/api/v4/projects/200/packages/generic/x/1.0.0/x.bin`, { headers: { 'job-token': TOKENS.tools } })).status

test('an entry is removed though another entry holds a policy the catalog no longer accepts', async t => {
  const g = await gateWithStalePolicy(t)
  assert.equal(await toolsRead(g), 200)
  const removed = await send(g.url, 'DELETE', '/api/v4/projects/200/job_token_scope/allowlist/300', { 'private-token': USERS.maintainer })
  assert.equal(removed.status, 204, removed.text)
  assert.equal(await toolsRead(g), 403)
  // The entry carried over keeps what it had.
  assert.deepEqual((await g.store.get(200))?.entries.map(e => [e.targetId, e.jobTokenPolicies]), [[600, ['read_containers', 'read_packages']]])
})

test('over GraphQL too, and other changes to the project go through', async t => {
  const g = await gateWithStalePolicy(t)
  const mutation = 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools"}) { errors } }'
  const answer = await send(g.url, 'POST', '/api/graphql', { 'content-type': 'application/json', 'private-token': ADMIN }, JSON.stringify({ query: mutation }))
  assert.equal(answer.status, 200, answer.text)
  assert.deepEqual(answer.json().data.ciJobTokenScopeRemoveProject.errors, [], answer.text)
  assert.equal(await toolsRead(g), 403)
  const rules = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': USERS.maintainer },
    JSON.stringify({ package_registry: { generic: { write: 'maintainer' } } }))
  assert.equal(rules.status, 200, rules.text)
})

test('a change of the entry that holds it still needs policies the catalog accepts', async t => {
  const g = await gateWithStalePolicy(t)
  const kept = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope/allowlist/600', { 'content-type': 'application/json', 'private-token': USERS.maintainer },
    JSON.stringify({ default_permissions: false }))
  assert.equal(kept.status, 400, kept.text)
  assert.match(kept.text, /read_containers/)
  const fixed = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_scope/allowlist/600', { 'content-type': 'application/json', 'private-token': USERS.maintainer },
    JSON.stringify({ default_permissions: false, job_token_policies: ['read_packages'] }))
  assert.equal(fixed.status, 200, fixed.text)
})
