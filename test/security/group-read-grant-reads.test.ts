// Finding: a job's package read through a route that names a group but no project (PyPI's group
// files and simple index, group metadata, the Terraform module registry's namespaces) is checked
// against the package rules of every project the group holds, up to 1,000, and each request asked
// the grant cache for each of them. The cache keeps 10,000 projects: a job naming groups whose
// projects were more than that together (11 groups of 1,000, by numeric id, any group of the
// instance) pushed each group's projects out before it named the group again, and every request
// read the store for all of them, about 3,000 Redis commands and 12-15 ms of the gate's CPU each.
//
// The grant cache now keeps the answer beside the group's listing (GrantCache.anyOf), as long as
// the project answers it was drawn from are fresh and none of them is invalidated: a group is read
// from the store once per listing and TTL, however many requests name it. The test counts Redis
// commands, never time: the listings, the grants and the Redis commands are given as long as a
// loaded machine takes (at a load of 12 a round of 11 groups outlasted the default 10 s of a
// listing, and a read of a group's 1,000 projects the grant cache's 2 s wait on the store).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { eventually } from '../helpers/eventually.ts'

const GROUPS = 11
const PER_GROUP = 1000
const groupId = (n: number): number => 5000 + n
const projectId = (n: number, i: number): number => 100_000 + n * PER_GROUP + i

function bigGroups (g: TestGate): void {
  for (let n = 0; n < GROUPS; n++) {
    const id = groupId(n)
    g.gitlab.groups.set(id, { id, fullPath: `big${n}`, parentId: null })
    for (let i = 0; i < PER_GROUP; i++) {
      g.gitlab.projects.set(projectId(n, i), { id: projectId(n, i), pathWithNamespace: `big${n}/p${i}`, namespace: { id, kind: 'group', fullPath: `big${n}`, parentId: null } })
    }
  }
}

/** Commands Redis ran (those its scripts ran included), but the subscriber's and this test's own. */
function commands (redis: RedisServer): number {
  let sum = 0
  for (const [, name, calls] of redis.cli('INFO', 'commandstats').matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) {
    if (!/^(info|ping|subscribe|publish|config|client)/.test(name!)) sum += Number(calls)
  }
  return sum
}

async function read (g: TestGate, n: number): Promise<{ status: number, code?: string }> {
  const res = await fetch(`${g.url}/api/v4/groups/${groupId(n)}/-/packages/pypi/simple`, { headers: { 'job-token': TOKENS.app } })
  const text = await res.text()
  return res.status === 200 ? { status: 200 } : { status: res.status, code: (JSON.parse(text) as { code: string }).code }
}

test('groups holding more projects than the grant cache are not read from the store on every request', async t => {
  const redis = await startRedis(t)
  // Hang detectors, not latencies: the listings kept and every wait as long as the test may take.
  const g = await startTestGate(t, {
    GATE_REDIS_URL: redis.url,
    GATE_GRANT_CACHE_TTL_MS: '600000',
    GATE_PROJECT_LOOKUP_TTL_MS: '600000',
    GATE_PROJECT_NOT_FOUND_TTL_MS: '600000',
    GATE_IDENTITY_CACHE_TTL_MS: '600000',
    GATE_IDENTITY_TIMEOUT_MS: '120000'
  }, { storeTimeoutMs: 120_000 })
  bigGroups(g)
  // Every group read once: its listing, and its projects' grants (about 3,000 commands each).
  for (let n = 0; n < GROUPS; n++) assert.equal((await read(g, n)).status, 200)

  // Each group again, after the others pushed its projects out of the cache: its listing is kept,
  // and so is the answer drawn from it.
  const again = async (n: number): Promise<{ status: number, code?: string, commands: number }> => {
    const [before, listed] = [commands(redis), g.gitlab.calls.group_projects]
    const answer = await read(g, n)
    assert.equal(g.gitlab.calls.group_projects, listed, `group ${n}: listed anew`)
    return { ...answer, commands: commands(redis) - before }
  }
  for (let n = 0; n < GROUPS; n++) {
    const answer = await again(n)
    assert.equal(answer.status, 200)
    assert.equal(answer.commands, 0, `group ${n}: its projects' grants read from Redis again`)
  }

  // A rule written for one project of a group drops what was kept of that group alone.
  await g.store.put({ projectId: projectId(3, 500), projectPath: 'big3/p500', inboundEnabled: true, entries: [], packageRules: { pypi: { read: false, write: 'maintainer' } } })
  await eventually(async () => (await read(g, 3)).status === 403, { message: 'the group holding the rule refused', timeoutMs: 120_000 })
  assert.deepEqual(await read(g, 3), { status: 403, code: 'PACKAGE_READ_DISABLED' })
  for (const n of [2, 4]) {
    const answer = await again(n)
    assert.equal(answer.status, 200)
    assert.equal(answer.commands, 0, `group ${n}: read again after another group's write`)
  }
})
