// Regression: the slots in which the gate reads GitLab's Maven package lists and npm metadata for
// group and instance routes (8 and 4 at once gate-wide) were handed out first come, first served.
// A job naming a hundred made-up packages at once (each a cache miss) had every slot, and every
// other build's uncached lookup waited behind all of that job's (up to 128 per queue) before
// GitLab was even asked: the job slowed every other build through the replica.
//
// Now a freed slot goes to the job with the fewest lookups running, the one served least
// recently among equals; a job's own lookups keep their order. A build that asks a name another
// job's lookup of the same name waits for takes that lookup's turn too, so naming others' packages
// in a flood holds them back no more. The bounds stay (1,024 waiting, 128 per job, then 503
// PROJECT_LOOKUPS_BUSY). GitLab holds its answers here: the test counts whose lookup is asked in
// which round, never time.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'
import { decisionOf, lookupsAsked, lookupsWorld, requestsInFlight } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const FLOOD = 100
const MAVEN = '/api/v4/groups/acme/-/packages/maven'
const NPM = '/api/v4/groups/acme/-/packages/npm'

/**
 * Job tools floods `paths` (held by GitLab, `slots` at a time), then job app asks `wanted`. Returns
 * the names GitLab was asked, in order, once every lookup (`lookups` of them) has been answered.
 */
async function floodThenAsk (g: TestGate, kind: 'maven' | 'npm', slots: number, paths: readonly string[], wanted: string, lookups = paths.length + 1): Promise<string[]> {
  const endpoint = kind === 'maven' ? 'packages' : 'npm_metadata'
  g.gitlab.hold.add(endpoint)
  const flood = paths.map(path => send(g.url, 'GET', path, job(TOKENS.tools)))
  await eventually(async () => await requestsInFlight(g) === paths.length, { message: 'every flooding request in the gate' })
  await eventually(() => g.gitlab.calls[endpoint] === slots, { message: `${slots} lookups asked` })
  // One more round trip through the gate: the flood's lookups have had every chance to queue.
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.tools))).status, 200)
  assert.equal(g.gitlab.calls[endpoint], slots, 'the rest of the flood waits')
  const answer = send(g.url, 'GET', wanted, job(TOKENS.app))
  await eventually(async () => await requestsInFlight(g) === paths.length + 1, { message: 'the other job\'s request in the gate' })
  assert.equal((await send(g.url, 'GET', '/api/v4/job', job(TOKENS.app))).status, 200)
  // Round by round: GitLab answers what it holds, and the slots freed ask the next lookups.
  let expected = slots
  while (expected < lookups) {
    g.gitlab.release()
    expected = Math.min(expected + slots, lookups)
    const wantedBy = expected
    await eventually(() => g.gitlab.calls[endpoint] === wantedBy, { message: `${wantedBy} lookups asked` })
  }
  g.gitlab.hold.delete(endpoint)
  g.gitlab.release()
  // Made-up names are no project (forwarded); none was refused busy.
  for (const [i, done] of (await Promise.all(flood)).entries()) assert.equal(done.status, paths[i]!.includes('made-up') ? 200 : 403, paths[i])
  assert.equal((await answer).status, 200)
  return lookupsAsked(g, kind)
}

test('Maven: another job\'s lookup is asked at the next free slot, not after a flooding job\'s hundred', async t => {
  const g = await lookupsWorld(t)
  const paths = Array.from({ length: FLOOD }, (_, i) => `${MAVEN}/com/acme/made-up-${i}/1.0/x.jar`)
  const wanted = `${MAVEN}/com/acme/wanted/1.0/wanted-1.0.jar`
  const names = await floodThenAsk(g, 'maven', 8, paths, wanted)
  assert.equal(names.length, FLOOD + 1)
  // First come, first served, it was the 101st.
  assert.ok(names.indexOf('com/acme/wanted') < 8 + 8, `asked in the round after the first: ${names.indexOf('com/acme/wanted') + 1}th`)
  // The flooding job's own lookups keep their order.
  const own = names.filter(n => n !== 'com/acme/wanted')
  assert.deepEqual(own, paths.map((_, i) => `com/acme/made-up-${i}`))
  assert.equal((await decisionOf(g, wanted)).accessed_project_id, 100)
})

test('npm: another job\'s lookup is asked at the next free slot, not after a flooding job\'s hundred', async t => {
  const g = await lookupsWorld(t)
  const paths = Array.from({ length: FLOOD }, (_, i) => `${NPM}/@acme%2Fmade-up-${i}`)
  const wanted = `${NPM}/@acme%2Fwanted`
  const names = await floodThenAsk(g, 'npm', 4, paths, wanted)
  assert.equal(names.length, FLOOD + 1)
  assert.ok(names.indexOf('@acme/wanted') < 4 + 4, `asked in the round after the first: ${names.indexOf('@acme/wanted') + 1}th`)
  assert.deepEqual(names.filter(n => n !== '@acme/wanted'), paths.map((_, i) => `@acme/made-up-${i}`))
  assert.equal((await decisionOf(g, wanted)).accessed_project_id, 100)
})

test('a flood that names another build\'s package last holds that build back no more: the build\'s turn asks it', async t => {
  const g = await lookupsWorld(t)
  // The flooding job queues the name the other job is about to ask, behind its made-up ones.
  const wanted = `${MAVEN}/com/acme/wanted/1.0/wanted-1.0.jar`
  const paths = [...Array.from({ length: FLOOD - 1 }, (_, i) => `${MAVEN}/com/acme/made-up-${i}/1.0/x.jar`), `${MAVEN}/com/acme/wanted/1.0/wanted-1.0.pom`]
  const names = await floodThenAsk(g, 'maven', 8, paths, wanted, FLOOD)
  // One lookup of the name, shared by both jobs' requests, asked in the other job's turn.
  assert.equal(names.length, FLOOD)
  assert.equal(names.filter(n => n === 'com/acme/wanted').length, 1)
  assert.ok(names.indexOf('com/acme/wanted') < 8 + 8, `asked in the round after the first: ${names.indexOf('com/acme/wanted') + 1}th`)
  assert.equal((await decisionOf(g, wanted)).accessed_project_id, 100)
})

test('npm: a flood that names another build\'s package last holds that build back no more', async t => {
  const g = await lookupsWorld(t)
  const wanted = `${NPM}/@acme%2Fwanted`
  const paths = [...Array.from({ length: FLOOD - 1 }, (_, i) => `${NPM}/@acme%2Fmade-up-${i}`), wanted]
  const names = await floodThenAsk(g, 'npm', 4, paths, wanted, FLOOD)
  assert.equal(names.length, FLOOD)
  assert.ok(names.indexOf('@acme/wanted') < 4 + 4, `asked in the round after the first: ${names.indexOf('@acme/wanted') + 1}th`)
  assert.equal((await decisionOf(g, wanted)).accessed_project_id, 100)
})
