// Finding: the users' package rules ask GitLab for the role of every credential a request
// carries, and where GitLab shows the gate no project at the path, of each one before deciding.
// GitLab's refusals are not cached, and credentials were not counted: one request with no
// valid credential at all, a PRIVATE-TOKEN header of 3,000 comma-separated made-up tokens (13
// KiB), made the gate call GitLab 3,000 times, again on every repeat. At most
// MAX_ROLE_CREDENTIALS different credentials are asked about; more are refused, 401
// CREDENTIAL_AMBIGUOUS, before any of them is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_ROLE_CREDENTIALS } from '../../src/admin/roles.ts'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'

const UNKNOWN_PATH_PUT = '/api/v4/projects/nosuch%2Fproject/packages/maven/com/acme/lib/1.0/lib-1.0.jar'
const MAVEN_PUT = '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'

async function roleCalls (healthUrl: string): Promise<number> {
  return total((await scrape(healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'project_access' })
}

test('thousands of made-up credentials in one request cost GitLab no call per credential', async t => {
  const g = await adminGate(t)
  // GitLab refuses a token it does not know (the fake's other answers are the upstream's).
  g.respond = (req, res) => {
    res.writeHead(req.method === 'GET' ? 401 : 200, { 'content-type': 'application/json' })
    res.end(req.method === 'GET' ? '{"message":"401 Unauthorized"}' : '{}')
  }
  const made = Array.from({ length: 3000 }, (_, i) => `t${i.toString(36)}`)
  for (const [name, path, headers, body] of [
    ['a PRIVATE-TOKEN header of 3,000 tokens', UNKNOWN_PATH_PUT, { 'private-token': made.join(',') }, 'x'],
    ['300 private_token query parameters', `${UNKNOWN_PATH_PUT}?${made.slice(0, 300).map(m => `private_token=${m}`).join('&')}`, {}, 'x'],
    ['3,000 access_token form fields', UNKNOWN_PATH_PUT, { 'content-type': 'application/x-www-form-urlencoded' }, made.map(m => `access_token=${m}`).join('&')]
  ] as const) {
    const before = await roleCalls(g.healthUrl)
    const answer = await send(g.url, 'PUT', path, headers, body)
    assert.equal(answer.status, 401, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'CREDENTIAL_AMBIGUOUS', name)
    assert.equal(await roleCalls(g.healthUrl) - before, 0, `${name}: no role was asked of GitLab`)
  }
  assert.deepEqual(g.seen.filter(s => s.method !== 'GET'), [], 'nothing was forwarded')
})

test('a project keeping writes to Maintainers refuses too many credentials; a few are still checked one by one', async t => {
  const g = await adminGate(t)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { 'content-type': 'application/json', 'private-token': ADMIN },
    JSON.stringify({ package_registry: { maven: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const before = g.seen.length
  const many = [USERS.maintainer, ...Array.from({ length: MAX_ROLE_CREDENTIALS }, (_, i) => `${USERS.maintainer}-${i}`)]
  const refused = await send(g.url, 'PUT', MAVEN_PUT, { 'private-token': many.join(',') }, 'x')
  assert.equal(refused.status, 401, refused.text)
  assert.equal(refused.json().code, 'CREDENTIAL_AMBIGUOUS')
  // Two Maintainers' credentials (header and query) are each checked, and pass.
  const two = await send(g.url, 'PUT', `${MAVEN_PUT}?private_token=${USERS.owner}`, { 'private-token': USERS.maintainer }, 'x')
  assert.equal(two.status, 200, two.text)
  assert.equal(g.seen.length, before + 1, 'only the Maintainers\' write reached GitLab')
})
