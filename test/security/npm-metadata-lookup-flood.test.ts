// Regression: GitLab's npm metadata of a name, which the gate reads to find the project of npm's
// instance and group routes (GitLab builds it on each call; the gate reads it whole, up to
// 16 MiB), was read for every lookup at once, however many ran.
//
// Reads are cached and shared per cache key, but the key holds the group as the URL names it, and
// GitLab reads `acme`, `ACME`, `10` and `0010` as one group: a job (any job of the instance) that
// asked for one large package's metadata through a hundred spellings of its group at once had the
// gate hold a hundred copies of the document, and GitLab build it a hundred times.
//
// Now at most four metadata documents are read at once gate-wide, 1,024 lookups more wait their
// turn, and a lookup past them is refused, 503 PROJECT_LOOKUPS_BUSY: never an allow, never a
// decision on another answer.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { GateError } from '../../src/errors.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { createProjectFinder } from '../../src/projects/finder.ts'
import { Router } from '../../src/routing/router.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { heldNpmMetadataGitlab } from '../projects/world.ts'

/** Group 10 (acme) as GitLab reads it, spelled `n` ways: `10`, `010`, `0010`, ... */
const spellings = (n: number): string[] => Array.from({ length: n }, (_, i) => '0'.repeat(i) + '10')

function read (g: TestGate, group: string): Promise<{ status: number, code: string | undefined }> {
  return fetch(`${g.url}/api/v4/groups/${group}/-/packages/npm/@acme%2Fpkg`, { headers: { 'job-token': TOKENS.app } })
    .then(async res => ({ status: res.status, code: ((await res.json()) as { code?: string }).code }))
}

async function inFlight (g: TestGate): Promise<number> {
  return total((await scrape(g.healthUrl)).samples, 'job_token_gate_in_flight_requests')
}

async function world (t: Parameters<typeof startTestGate>[0]): Promise<TestGate> {
  const g = await startTestGate(t)
  g.gitlab.packages.push({ id: 1, name: '@acme/pkg', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  // The job's token resolved once, before the reads.
  assert.equal((await fetch(`${g.url}/api/v4/job`, { headers: { 'job-token': TOKENS.app } })).status, 200)
  // GitLab builds the metadata slowly: each read of it is held until released.
  g.gitlab.late.add('npm_metadata')
  return g
}

test('a job naming one group many ways has at most four metadata documents read at once', async t => {
  const g = await world(t)
  const answers = spellings(20).map(group => read(g, group))
  await eventually(async () => await inFlight(g) === 20, { message: 'every read in the gate' })
  await eventually(() => g.gitlab.calls.npm_metadata >= 4, { message: 'four metadata reads' })
  // One more round trip through the gate: the others have had every chance to ask.
  assert.equal(await inFlight(g), 20)
  assert.equal(g.gitlab.calls.npm_metadata, 4, 'the other sixteen wait')
  g.gitlab.late.delete('npm_metadata')
  g.gitlab.release()
  for (const answer of await Promise.all(answers)) assert.equal(answer.status, 200, JSON.stringify(answer))
  assert.equal(g.gitlab.calls.npm_metadata, 20, 'each waiting lookup read in turn')
  assert.equal(g.seen.length, 20)
})

test('past four read and 1,024 waiting, a lookup is refused, never decided without one', async () => {
  // The finder alone, over a GitLab that holds every metadata read until released.
  const { gitlab, held, reads } = heldNpmMetadataGitlab()
  const finder = createProjectFinder({ gitlab })
  const router = Router.compile(loadCatalog().routes)
  const identity: JobIdentity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/app', ancestorGroupIds: [10], userId: 7 }
  const find = (group: string, i: number): Promise<unknown> => {
    const match = router.match('GET', `/groups/${group}/-/packages/npm/@acme%2Fpkg`)
    assert.ok(match)
    // Many jobs' installs (one job may have 128 waiting).
    return Promise.resolve().then(() => finder.find(match.route, match.params, { ...identity, jobId: 1 + i % 16 })).then(found => found, (err: unknown) => err)
  }
  const outcomes = spellings(4 + 1024 + 12).map(find)
  for (const err of await Promise.all(outcomes.slice(4 + 1024))) assert.ok(err instanceof GateError && err.code === 'PROJECT_LOOKUPS_BUSY', String(err))
  assert.equal(reads(), 4)
  let settled = false
  void Promise.all(outcomes).then(() => { settled = true })
  while (!settled) {
    assert.ok(held.length <= 4, 'never more than four read at once')
    for (const release of held.splice(0)) release()
    await new Promise(resolve => setImmediate(resolve))
  }
  for (const found of await Promise.all(outcomes.slice(0, 4 + 1024))) assert.deepEqual(found, { kind: 'project', id: 200 })
  assert.equal(reads(), 4 + 1024, 'a refused lookup never read GitLab')
})
