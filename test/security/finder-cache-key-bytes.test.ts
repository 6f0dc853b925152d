// Finding: the cache of the project found for group and instance routes was bounded by its number
// of entries (10,000) only, and its keys are the client's URL parameters: a Maven instance path of
// up to 8 KiB. "No project" answers expire after 10 s but stay in memory until evicted, so one
// job sending requests with distinct long Maven paths (each one GitLab lookup, then forwarded as
// "no project") pinned its keys for the life of the process: 10,000 such paths of 7 KiB held
// 68.6 MB of heap after a full GC (4.7 MB with the bound; the sidecar's memory limit is 384 Mi).
//
// Now the cache is bounded by the characters of its keys too (4 Mi by default).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { JobIdentity } from '../../src/identity/types.ts'
import { createProjectFinder } from '../../src/projects/finder.ts'
import { Router } from '../../src/routing/router.ts'
import { gitlabFindingNothing } from '../helpers/gitlab-nothing.ts'

const router = Router.compile(loadCatalog().routes)
const identity: JobIdentity = { jobId: 1, jobProjectId: 100, jobProjectPath: 'acme/app', ancestorGroupIds: [10], userId: 7, pipelineId: 1001 }

test('the found-project cache is bounded by the bytes of its keys, not only by their number', async () => {
  // GitLab as an administrator's token sees it: no project at any of these paths.
  const { gitlab, lookups } = gitlabFindingNothing(path => path === '/api/v4/user' || path === '/api/v4/users/1' ? { status: 200, body: { id: 1, is_admin: true } } : undefined)
  const finder = createProjectFinder({ gitlab })
  const filler = Array.from({ length: 28 }, () => 'a'.repeat(250)).join('/')
  const find = async (n: number): Promise<unknown> => {
    const match = router.match('GET', `/packages/maven/g${n}/${filler}/x.jar`)
    assert.ok(match)
    return await finder.find(match.route, match.params, identity)
  }
  assert.deepEqual(await find(0), { kind: 'no_project' })
  await find(0)
  assert.equal(lookups(), 1, 'cached')
  // 1,000 paths of 7 KiB: 7 MiB of keys, a tenth of the entries allowed.
  for (let n = 1; n <= 1000; n++) await find(n)
  assert.equal(lookups(), 1001)
  await find(0)
  assert.equal(lookups(), 1002, 'the oldest long key was evicted')
})
