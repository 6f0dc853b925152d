// Regression: an npm dist-tag write through an instance or group route was decided on the
// project a lookup found up to GATE_PROJECT_LOOKUP_TTL_MS earlier.
//
// GitLab acts on the project of the last installable package of that name under the namespace
// (lib/api/helpers/packages/npm.rb, project_id_or_nil), read on each request. A job allowed to
// publish into one project of the namespace controls which package is the last: it published the
// name there, had a request decided (the lookup cached that project for 60 s), then deleted its
// package. GitLab then acted on the project of the previous package, one the job may not use,
// while the gate kept deciding on the cached one: tags of that project's package could be moved
// or deleted for up to a minute.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, pkg, projectsGate } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })

test('npm dist-tag writes through instance and group routes are decided on the project GitLab finds now, not on a cached one', async t => {
  const g = await projectsGate(t)
  // acme/lib (200) holds @acme/shared and does not let other/tools in; acme/registry (700) lets
  // the `other` group's jobs publish.
  g.gitlab.packages.push(pkg('@acme/shared', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  const mine = pkg('@acme/shared', '9.0.0', 'npm', 700, '2026-02-01T00:00:00Z')
  g.gitlab.packages.push(mine)
  for (const path of ['/api/v4/packages/npm/-/package/@acme%2fshared/dist-tags/latest', '/api/v4/groups/acme/-/packages/npm/-/package/@acme%2fshared/dist-tags/latest']) {
    assert.equal((await send(g.url, 'PUT', path, job(TOKENS.tools), '"9.0.0"')).status, 200, path)
    assert.equal((await decisionOf(g, path)).accessed_project_id, 700, path)
  }
  // The job deletes its own package: GitLab's last package of that name is 200's again.
  g.gitlab.packages.splice(g.gitlab.packages.indexOf(mine), 1)
  for (const [method, path] of [
    ['PUT', '/api/v4/packages/npm/-/package/@acme%2fshared/dist-tags/latest'],
    ['DELETE', '/api/v4/packages/npm/-/package/@acme%2fshared/dist-tags/latest'],
    ['PUT', '/api/v4/groups/acme/-/packages/npm/-/package/@acme%2fshared/dist-tags/latest']
  ] as const) {
    const res = await send(g.url, method, path, job(TOKENS.tools), method === 'PUT' ? '"1.0.0"' : undefined)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', `${method} ${path}`)
    assert.equal((await decisionOf(g, path)).accessed_project_id, 200, `${method} ${path}`)
  }
})

// A write that came while another request's lookup of the same name was in flight was handed
// that lookup's answer (lru-cache's fetch() joins a forced refresh to a fetch already running),
// which GitLab had read before the job deleted its package.
test('a dist-tag write asks GitLab itself while a lookup of the same name is still in flight', async t => {
  const g = await projectsGate(t)
  // Both projects hold version 1.0.0; GitLab's metadata lists the last package of each version.
  g.gitlab.packages.push(pkg('@acme/shared', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  const mine = pkg('@acme/shared', '1.0.0', 'npm', 700, '2026-02-01T00:00:00Z')
  g.gitlab.packages.push(mine)
  // GitLab reads its database as the lookup arrives and sends the answer late (the metadata of
  // a package of many versions is slow to build).
  g.gitlab.late.add('npm_metadata')
  const read = send(g.url, 'GET', '/api/v4/packages/npm/-/package/@acme%2fshared/dist-tags', job(TOKENS.tools))
  await eventually(() => g.gitlab.calls.npm_metadata === 1, { message: 'the read\'s lookup' })
  // Meanwhile the job deletes its package: GitLab's last package of that name is 200's again.
  g.gitlab.packages.splice(g.gitlab.packages.indexOf(mine), 1)
  const path = '/api/v4/packages/npm/-/package/@acme%2fshared/dist-tags/latest'
  const write = send(g.url, 'DELETE', path, job(TOKENS.tools))
  await eventually(() => g.gitlab.calls.npm_metadata === 2, { message: 'the write\'s own lookup' })
  g.gitlab.release()
  assert.equal((await write).json().code, 'NOT_ALLOWLISTED')
  assert.equal((await decisionOf(g, path)).accessed_project_id, 200)
  await read
})
