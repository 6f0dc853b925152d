// Finding: GitLab finds a project by full path case-insensitively, comparing LOWER() of both
// sides in PostgreSQL (Routable.find_by_full_path, CaseSensitivity#iwhere). Under any collation
// but plain "C", LOWER() folds a few characters outside ASCII onto ASCII letters: the Kelvin
// sign U+212A is "k" (and, with glibc, U+0130 "İ" is "i"). So `/projects/acme%2F%E2%84%AAit`
// is acme/kit to GitLab. The gate took a path with such a character for "not a full path", which
// resolves to no project without asking GitLab: a Developer naming the project so escaped its
// Maintainer-only package rules, and with GATE_UNKNOWN_PROJECT=allow any job passed its allowlist
// and the rules. Any :id holding a '/' is now asked of GitLab, which says what it routes it to.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }
const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/tool/1.0/tool.bin`
/** acme/kit with the Kelvin sign (U+212A) for its "k", percent-encoded as UTF-8. */
const KELVIN = 'acme%2F%E2%84%AAit'

/** acme/lib (200) keeps generic writes to Maintainers, and is named acme/kit in GitLab now. */
async function kit (g: TestGate): Promise<void> {
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { generic: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const project = g.gitlab.projects.get(200)!
  g.gitlab.projects.set(200, { ...project, pathWithNamespace: 'acme/kit' })
}

test('a Developer naming the project by a path GitLab folds onto its own keeps to its package rules', async t => {
  const g = await adminGate(t)
  await kit(g)
  const before = g.seen.length
  for (const id of ['acme%2Fkit', KELVIN, 'ACME%2F%E2%84%AAIT']) {
    const user = await send(g.url, 'PUT', upload(id), { 'private-token': USERS.developer }, 'bytes')
    assert.equal(user.status, 403, `Developer by path ${id}: ${user.text}`)
    assert.equal(user.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.equal(g.seen.length, before, 'no refused write reached the upstream')
  const maintainer = await send(g.url, 'PUT', upload(KELVIN), { 'private-token': USERS.maintainer }, 'bytes')
  assert.equal(maintainer.status, 200, maintainer.text)
  // A string without '/' is no path to GitLab (find_project finds nothing): not asked.
  const calls = g.gitlab.calls.project
  const noPath = await send(g.url, 'PUT', upload('%E2%84%AAit'), { 'private-token': USERS.developer }, 'bytes')
  assert.equal(noPath.status, 200, noPath.text)
  assert.equal(g.gitlab.calls.project, calls)
})

test('with GATE_UNKNOWN_PROJECT=allow, a job naming a project so is decided on that project', async t => {
  const g = await adminGate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  await kit(g)
  const before = g.seen.length
  // The project's own job: its rules hold.
  const own = await send(g.url, 'PUT', upload(KELVIN), { 'job-token': TOKENS.lib }, 'bytes')
  assert.equal(own.status, 403, own.text)
  assert.equal(own.json().code, 'PACKAGE_MAINTAINER_ONLY')
  // other/tools is not on acme/lib's allowlist.
  const other = await send(g.url, 'GET', upload(KELVIN), { 'job-token': TOKENS.tools })
  assert.equal(other.status, 403, other.text)
  assert.notEqual(other.json().code, 'UNKNOWN_PROJECT')
  assert.equal(g.seen.length, before, 'nothing refused reached the upstream')
})

test('where GitLab\'s database folds ASCII only, a path naming no project there leaves its ASCII twin alone', async t => {
  const g = await adminGate(t)
  await kit(g)
  // LOWER() under the "C" collation: acme/<Kelvin>it is no project to GitLab.
  g.gitlab.collation = 'c'
  // Any job may ask about the Kelvin path first: GitLab shows no project there.
  const first = await send(g.url, 'GET', upload(KELVIN), { 'job-token': TOKENS.tools })
  assert.equal(first.status, 403, first.text)
  assert.equal(first.json().code, 'UNKNOWN_PROJECT')
  // acme/platform/app's job still reads acme/kit's packages by its path (its allowlist lets it).
  const app = await send(g.url, 'GET', upload('acme%2Fkit'), { 'job-token': TOKENS.app })
  assert.equal(app.status, 200, app.text)
  const user = await send(g.url, 'PUT', upload('acme%2Fkit'), { 'private-token': USERS.developer }, 'bytes')
  assert.equal(user.status, 403, user.text)
  assert.equal(user.json().code, 'PACKAGE_MAINTAINER_ONLY')
})
