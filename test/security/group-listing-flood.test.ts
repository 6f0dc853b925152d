// Regression: a package read through a group route that names no project (PyPI's group files and
// simple index, Composer, NuGet and Debian group metadata, npm's group audits, the Terraform module
// registry's namespaces, a Maven virtual registry's local groups) has the gate list every project
// under the group (`GET /groups/:id/projects?include_subgroups=true`, up to 10 pages of 100, each
// page held until the last) to check their package rules. Those listings were kept per group as
// the URL names it, and any number of them ran at once.
//
// GitLab reads `10`, `010`, `0010`, ... (and `acme`, `ACME`) as one group, so a job (any job of the
// instance) that sent a few hundred reads of one group spelled as many ways at once had the gate
// list that group's projects a few hundred times at once, with the service token: up to ten calls
// per request, a thousand projects held per listing, and nothing to bound them but the client's
// patience.
//
// Now at most eight such listings are read at once gate-wide, 1,024 more wait their turn (128 of
// one job), shared fairly between jobs as Maven's listings are, and a listing past them is
// refused, 503 PROJECT_LOOKUPS_BUSY: never an allow, never a read forwarded unchecked. GitLab holds
// its answers here: the test counts what GitLab is asked, never time.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GateError } from '../../src/errors.ts'
import type { GitlabClient } from '../../src/gitlab/client.ts'
import { createProjectFinder } from '../../src/projects/finder.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { scrape, total } from '../helpers/metrics.ts'

/** Group 10 (acme) as GitLab reads it, spelled `n` ways: `10`, `010`, `0010`, ... */
const spellings = (n: number): string[] => Array.from({ length: n }, (_, i) => '0'.repeat(i) + '10')

function read (g: TestGate, group: string): Promise<{ status: number, code: string | undefined }> {
  return fetch(`${g.url}/api/v4/groups/${group}/-/packages/pypi/simple`, { headers: { 'job-token': TOKENS.app } })
    .then(async res => ({ status: res.status, code: res.status === 200 ? undefined : ((await res.json()) as { code?: string }).code }))
}

async function inFlight (g: TestGate): Promise<number> {
  return total((await scrape(g.healthUrl)).samples, 'job_token_gate_in_flight_requests')
}

test('a job naming one group many ways has at most eight of its project listings read at once', async t => {
  const g = await startTestGate(t)
  // The job's token resolved once, before the reads.
  assert.equal((await fetch(`${g.url}/api/v4/job`, { headers: { 'job-token': TOKENS.app } })).status, 200)
  g.gitlab.resetCalls()
  // GitLab lists the projects slowly: each listing is held until released.
  g.gitlab.late.add('group_projects')
  const answers = spellings(20).map(group => read(g, group))
  await eventually(async () => await inFlight(g) === 20, { message: 'every read in the gate' })
  await eventually(() => g.gitlab.calls.group_projects >= 8, { message: 'eight listings' })
  // One more round trip through the gate: the others have had every chance to ask.
  assert.equal(await inFlight(g), 20)
  assert.equal(g.gitlab.calls.group_projects, 8, 'the other twelve wait')
  const { samples } = await scrape(g.healthUrl)
  assert.equal(total(samples, 'job_token_gate_project_lookups', { queue: 'group_listings', state: 'running' }), 8)
  assert.equal(total(samples, 'job_token_gate_project_lookups', { queue: 'group_listings', state: 'waiting' }), 12)
  g.gitlab.late.delete('group_projects')
  g.gitlab.release()
  for (const answer of await Promise.all(answers)) assert.equal(answer.status, 200, JSON.stringify(answer))
  assert.equal(g.gitlab.calls.group_projects, 20, 'each spelling listed once, in turn')
  assert.equal(g.seen.length, 20)
})

test('past eight read and 1,024 waiting, a listing is refused, never a read decided without one', async () => {
  // The finder alone, over a GitLab that holds every project listing until released.
  const held: Array<() => void> = []
  let listed = 0
  const gitlab: GitlabClient = {
    async get (path) {
      if (path === '/api/v4/user' || path === '/api/v4/users/1') return { status: 200, body: { id: 1, is_admin: true } }
      return { status: 404, body: { message: '404 Not Found' } }
    },
    async getList (path) {
      assert.match(path, /^\/api\/v4\/groups\/0*10\/projects\?/)
      listed++
      await new Promise<void>(resolve => held.push(resolve))
      return { status: 200, items: [{ id: 200 }, { id: 300 }], truncated: false }
    },
    hasServiceToken: true,
    stats: () => ({}),
    async close () {}
  }
  const finder = createProjectFinder({ gitlab })
  // Many jobs' reads (one job may have 128 waiting).
  const outcomes = spellings(8 + 1024 + 12).map((group, i) =>
    Promise.resolve().then(() => finder.groupProjects(group, String(1 + i % 16))).then(found => found, (err: unknown) => err))
  for (const err of await Promise.all(outcomes.slice(8 + 1024))) assert.ok(err instanceof GateError && err.code === 'PROJECT_LOOKUPS_BUSY', String(err))
  // The eight started reach GitLab once the loads before them (the service token's rights) answer.
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(listed, 8)
  let settled = false
  void Promise.all(outcomes).then(() => { settled = true })
  while (!settled) {
    assert.ok(held.length <= 8, 'never more than eight read at once')
    for (const release of held.splice(0)) release()
    await new Promise(resolve => setImmediate(resolve))
  }
  for (const found of await Promise.all(outcomes.slice(0, 8 + 1024))) assert.deepEqual(found, [200, 300])
  assert.equal(listed, 8 + 1024, 'a refused listing never read GitLab')
  assert.deepEqual(finder.stats().slots.group_listings, { running: 0, waiting: 0, owners: 0, dropped: 0 })
})
