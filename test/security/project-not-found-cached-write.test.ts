// Finding: a group or instance route's lookup that finds no project is kept
// (GATE_PROJECT_NOT_FOUND_TTL_MS, 10 s by default), and a request whose lookup finds none is
// forwarded undecided (`NO_PROJECT`): GitLab answers 404. A project created, renamed or moved to
// that path within the time was GitLab's to act on, while the gate still forwarded on the "no
// project" it kept: a Conan upload through the instance API by a job outside that project's
// allowlist went through undecided (200 NO_PROJECT, where the same upload once the answer had
// gone was refused 403 NOT_ALLOWLISTED). A write now looks the project up again whenever it would
// be forwarded on a "no project" kept from before it came; reads keep the answer for the time set,
// as documented.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, forwarded, projectsGate } from '../projects/world.ts'

const job = { 'job-token': TOKENS.app }
const upload = '/api/v4/packages/conan/v1/files/pkg/1.0/acme+moved/stable/0/export/conanfile.py'
const read = '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+moved/stable/download_urls'

test('a write is never forwarded on a "no project" kept from before a project came to that path', async t => {
  const g = await projectsGate(t)
  // No project at acme/moved: forwarded, GitLab answers.
  assert.equal((await send(g.url, 'PUT', upload, job, 'recipe')).status, 200)
  assert.equal((await decisionOf(g, upload)).reason, 'NO_PROJECT')
  // acme/registry (700), whose allowlist lacks the app job's project, is now found at acme/moved.
  g.gitlab.redirects.set('acme/moved', 700)
  const res = await send(g.url, 'PUT', upload, job, 'recipe')
  assert.equal(res.status, 403, res.text)
  assert.equal(res.json().code, 'NOT_ALLOWLISTED')
  assert.equal(forwarded(g, upload), 1, 'GitLab saw the first upload only')
})

test('a write to a path with no project asks GitLab each time; reads keep the answer', async t => {
  const g = await projectsGate(t)
  g.gitlab.resetCalls()
  for (let i = 0; i < 3; i++) {
    assert.equal((await send(g.url, 'GET', read, job)).status, 200)
    assert.equal((await decisionOf(g, read)).reason, 'NO_PROJECT')
  }
  const afterReads = g.gitlab.calls.project
  assert.ok(afterReads >= 1, 'the path was looked up')
  for (let i = 0; i < 3; i++) assert.equal((await send(g.url, 'PUT', upload, job, 'recipe')).status, 200)
  assert.equal(g.gitlab.calls.project - afterReads, 3, 'one lookup per write')
})
