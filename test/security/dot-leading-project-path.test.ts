// Finding: GitLab project and group paths may start with '.' (lib/gitlab/path_regex.rb:
// `acme/.dotfiles`), but the gate took such a path for "not a full path", which resolves to no
// project without asking GitLab. A Developer addressing the project by that path
// (`/projects/acme%2F.lib/packages/...`) escaped its Maintainer-only package rules, and with
// `GATE_UNKNOWN_PROJECT=allow` any job passed both its allowlist and its rules; the project could
// not be configured either (its path failed validation). Such paths are full paths now.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate, ADMIN, USERS } from '../helpers/admin-gate.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const json = { 'content-type': 'application/json' }
const upload = (id: string): string => `/api/v4/projects/${id}/packages/generic/tool/1.0/tool.bin`

/** acme/lib (200) keeps generic writes to Maintainers, then is renamed in GitLab to acme/.lib. */
async function renamedToDotPath (g: TestGate): Promise<void> {
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { generic: { write: 'maintainer' } } }))
  assert.equal(patch.status, 200, patch.text)
  const project = g.gitlab.projects.get(200)!
  g.gitlab.projects.set(200, { ...project, pathWithNamespace: 'acme/.lib' })
}

test('a project whose path starts with a dot keeps its package rules when named by that path', async t => {
  const g = await adminGate(t)
  await renamedToDotPath(g)
  const before = g.seen.length
  for (const id of ['acme%2F.lib', 'ACME%2F.Lib']) {
    const user = await send(g.url, 'PUT', upload(id), { 'private-token': USERS.developer }, 'bytes')
    assert.equal(user.status, 403, `Developer by path ${id}: ${user.text}`)
    assert.equal(user.json().code, 'PACKAGE_MAINTAINER_ONLY')
    const job = await send(g.url, 'PUT', upload(id), { 'job-token': TOKENS.lib }, 'bytes')
    assert.equal(job.status, 403, `own job by path ${id}: ${job.text}`)
    assert.equal(job.json().code, 'PACKAGE_MAINTAINER_ONLY')
  }
  assert.equal(g.seen.length, before, 'no refused write reached the upstream')
  const maintainer = await send(g.url, 'PUT', upload('acme%2F.lib'), { 'private-token': USERS.maintainer }, 'bytes')
  assert.equal(maintainer.status, 200, maintainer.text)
  const read = await send(g.url, 'GET', upload('acme%2F.lib'), { 'job-token': TOKENS.lib })
  assert.equal(read.status, 200, `the project's own job reads by its path: ${read.text}`)
})

test('with GATE_UNKNOWN_PROJECT=allow, a dot path is still the configured project it names', async t => {
  const g = await adminGate(t, { GATE_UNKNOWN_PROJECT: 'allow' })
  await renamedToDotPath(g)
  const before = g.seen.length
  const stranger = await send(g.url, 'PUT', upload('acme%2F.lib'), { 'job-token': TOKENS.tools }, 'bytes')
  assert.equal(stranger.status, 403, stranger.text)
  assert.equal(stranger.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.length, before)
})

test('a project whose path starts with a dot can be configured', async t => {
  const g = await adminGate(t)
  await renamedToDotPath(g)
  const byId = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', { ...json, 'private-token': ADMIN },
    JSON.stringify({ package_registry: { maven: { write: 'maintainer' } } }))
  assert.equal(byId.status, 200, byId.text)
  const byPath = await send(g.url, 'GET', '/api/v4/projects/acme%2F.lib/job_token_permissions', { 'private-token': ADMIN })
  assert.equal(byPath.status, 200, byPath.text)
  assert.equal(byPath.json().package_registry.generic.write, 'maintainer')
})
