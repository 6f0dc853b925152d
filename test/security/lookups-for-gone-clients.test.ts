// Regression: a lookup waiting for a slot (GitLab's npm metadata and Maven package lists, read for
// group and instance routes: src/projects/slots.ts) whose requests' clients had all gone away was
// still asked of GitLab when its turn came, for nobody, and the live builds' lookups queued behind
// it waited for it. A job that sent requests naming made-up packages and dropped the connections
// filled the queue with work nobody waited for: with forty such requests behind eight listings
// being read, the same job's next lookup was the 49th asked, after five more rounds of slots.
//
// Now a lookup waiting for a slot whose every request has gone is dropped, never asked; one shared
// with a request still waiting (the same name, another path of a Maven name) stays and answers
// it. A lookup already asked runs to its end (its answer is kept for the next request). Drops are
// counted in job_token_gate_project_lookups_dropped_total{queue}, and the requests end with a
// decision line, CLIENT_ABORTED at resolve_grants. GitLab holds its answers here: the test counts
// what GitLab is asked, never time.
//
// A dropped lookup stayed shared while its rejection went through the promises between, and a
// live request that came meanwhile (one of the same job, resumed with the gone one when their
// token was resolved) shared it and was answered 503: it now has its lookup asked anew.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createProjectFinder } from '../../src/projects/finder.ts'
import { LookupDropped } from '../../src/waiters.ts'
import { Router } from '../../src/routing/router.ts'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'
import { scrape, total } from '../helpers/metrics.ts'
import { decisionOf, FINDER_JOB, heldNpmMetadataGitlab, leavingClient, lookupsAsked, lookupsWorld, pkg, requestsInFlight } from '../projects/world.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token })
const MAVEN = '/api/v4/groups/acme/-/packages/maven'
const NPM = '/api/v4/groups/acme/-/packages/npm'
type Queue = 'maven_listings' | 'npm_metadata'
/** The lookups each queue reads (lookupsAsked). */
const KIND = { maven_listings: 'maven', npm_metadata: 'npm' } as const

/** A client that sends a request and, once the test says, goes away without reading the answer. */
function leaving (g: TestGate, path: string, token: string): Socket {
  return leavingAt(Number(new URL(g.url).port), `GET ${path} HTTP/1.1\r\nHost: gitlab.example\r\nJOB-TOKEN: ${token}\r\n\r\n`)
}

function leavingAt (port: number, request: string): Socket {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(request)
  return socket
}

/** The lookups of one queue, as /metrics tells them. */
async function lookups (g: TestGate, queue: Queue): Promise<{ running: number, waiting: number, dropped: number }> {
  const { samples } = await scrape(g.healthUrl)
  return {
    running: total(samples, 'job_token_gate_project_lookups', { queue, state: 'running' }),
    waiting: total(samples, 'job_token_gate_project_lookups', { queue, state: 'waiting' }),
    dropped: total(samples, 'job_token_gate_project_lookups_dropped_total', { queue })
  }
}

/**
 * Job tools fills the queue's slots with `slots` lookups GitLab holds, then sends `gone` requests
 * of made-up names whose clients go away while their lookups wait. Returns the paths of both.
 */
async function fillThenLeave (g: TestGate, queue: Queue, slots: number, gone: number): Promise<{ running: Array<Promise<{ status: number }>>, gonePaths: string[] }> {
  const path = (name: string): string => queue === 'maven_listings' ? `${MAVEN}/com/acme/${name}/1.0/x.jar` : `${NPM}/@acme%2F${name}`
  g.gitlab.hold.add(queue === 'maven_listings' ? 'packages' : 'npm_metadata')
  const running = Array.from({ length: slots }, (_, i) => send(g.url, 'GET', path(`running-${i}`), job(TOKENS.tools)))
  await eventually(async () => (await lookups(g, queue)).running === slots, { message: `${slots} lookups asked` })
  const gonePaths = Array.from({ length: gone }, (_, i) => path(`gone-${i}`))
  const clients = gonePaths.map(p => leaving(g, p, TOKENS.tools))
  await eventually(async () => (await lookups(g, queue)).waiting === gone, { message: 'the lookups of the clients about to go waiting' })
  for (const client of clients) client.destroy()
  await eventually(async () => (await lookups(g, queue)).dropped === gone, { message: 'every lookup of a client gone dropped' })
  assert.deepEqual(await lookups(g, queue), { running: slots, waiting: 0, dropped: gone })
  // Their requests are over, each with its decision line, none forwarded.
  await eventually(async () => await requestsInFlight(g) === slots, { message: 'the requests of the clients gone over' })
  for (const p of gonePaths) {
    const line = await decisionOf(g, p)
    assert.deepEqual([line.decision, line.reason, line.stage], ['error', 'CLIENT_ABORTED', 'resolve_grants'], p)
  }
  return { running, gonePaths }
}

for (const [queue, slots, gone] of [['maven_listings', 8, 40], ['npm_metadata', 4, 20]] as const) {
  test(`${queue}: the lookups of clients that went away are never asked; the job's next lookup takes the next free slot`, async t => {
    const g = await lookupsWorld(t)
    const { running, gonePaths } = await fillThenLeave(g, queue, slots, gone)
    const nextPath = queue === 'maven_listings' ? `${MAVEN}/com/acme/next/1.0/x.jar` : `${NPM}/@acme%2Fnext`
    const next = send(g.url, 'GET', nextPath, job(TOKENS.tools))
    await eventually(async () => (await lookups(g, queue)).waiting === 1, { message: 'the next lookup waiting' })
    g.gitlab.hold.delete(queue === 'maven_listings' ? 'packages' : 'npm_metadata')
    g.gitlab.release()
    // Made-up names: no project, forwarded.
    for (const answer of await Promise.all([...running, next])) assert.equal(answer.status, 200)
    const names = lookupsAsked(g, KIND[queue])
    const prefix = queue === 'maven_listings' ? 'com/acme/' : '@acme/'
    assert.deepEqual(names.slice(0, slots).sort(), Array.from({ length: slots }, (_, i) => `${prefix}running-${i}`).sort())
    // First come, first served among the job's own, it was asked after every lookup of a client gone.
    assert.deepEqual(names.slice(slots), [`${prefix}next`], 'no lookup of a client gone was asked')
    for (const p of gonePaths) assert.equal(g.seen.filter(s => s.url === p).length, 0, `${p} not forwarded`)
    assert.deepEqual(await lookups(g, queue), { running: 0, waiting: 0, dropped: gone })
  })
}

/**
 * Job tools' client asks `gonePath` and goes away while its lookup waits, shared with job app's
 * `livePath`, which still waits: the lookup is asked once and answers app. A made-up name's client
 * goes right after tools', and its drop is awaited: the gate has heard tools' client go too.
 */
async function sharedWithLive (g: TestGate, queue: Queue, gonePath: string, livePath: string): Promise<void> {
  const slots = queue === 'maven_listings' ? 8 : 4
  const endpoint = queue === 'maven_listings' ? 'packages' : 'npm_metadata'
  g.gitlab.hold.add(endpoint)
  const path = (name: string): string => queue === 'maven_listings' ? `${MAVEN}/com/acme/${name}/1.0/x.jar` : `${NPM}/@acme%2F${name}`
  const running = Array.from({ length: slots }, (_, i) => send(g.url, 'GET', path(`running-${i}`), job(TOKENS.tools)))
  await eventually(async () => (await lookups(g, queue)).running === slots, { message: `${slots} lookups asked` })
  const goneClient = leaving(g, gonePath, TOKENS.tools)
  await eventually(async () => (await lookups(g, queue)).waiting === 1, { message: 'the gone client\'s lookup waiting' })
  const live = send(g.url, 'GET', livePath, job(TOKENS.app))
  await eventually(async () => await requestsInFlight(g) === slots + 2, { message: 'the live request in the gate' })
  const marker = leaving(g, path('marker'), TOKENS.tools)
  await eventually(async () => (await lookups(g, queue)).waiting === 2, { message: 'the marker\'s lookup waiting' })
  goneClient.destroy()
  marker.destroy()
  await eventually(async () => (await lookups(g, queue)).dropped >= 1, { message: 'the marker\'s lookup dropped' })
  assert.deepEqual(await lookups(g, queue), { running: slots, waiting: 1, dropped: 1 }, 'the shared lookup still waits')
  g.gitlab.hold.delete(endpoint)
  g.gitlab.release()
  assert.equal((await live).status, 200)
  assert.equal((await decisionOf(g, livePath)).accessed_project_id, 100)
  for (const answer of await Promise.all(running)) assert.equal(answer.status, 200)
  const wanted = queue === 'maven_listings' ? 'com/acme/wanted' : '@acme/wanted'
  assert.equal(lookupsAsked(g, KIND[queue]).filter(name => name === wanted).length, 1, 'asked once, for both')
  assert.ok(!lookupsAsked(g, KIND[queue]).some(name => name.endsWith('/marker')))
  // The gone client's request waited for the answer too, and went no further.
  await eventually(async () => await requestsInFlight(g) === 0, { message: 'every request over' })
  assert.equal(g.seen.filter(s => s.url === livePath || s.url === gonePath).length, 1, 'the live request forwarded, not the gone one')
  assert.deepEqual(await lookups(g, queue), { running: 0, waiting: 0, dropped: 1 })
}

test('npm: a lookup a gone client shares with a request still waiting is asked, and answers that request', async t => {
  const g = await lookupsWorld(t)
  await sharedWithLive(g, 'npm_metadata', `${NPM}/@acme%2Fwanted`, `${NPM}/@acme%2Fwanted`)
})

test('Maven: a listing a gone client\'s path shares with another path of the name still waited for is read, and answers it', async t => {
  const g = await lookupsWorld(t)
  await sharedWithLive(g, 'maven_listings', `${MAVEN}/com/acme/wanted/1.0/wanted-1.0.pom`, `${MAVEN}/com/acme/wanted/1.0/wanted-1.0.jar`)
})

test('writes: a lookup begun for a write is dropped once the write has gone; the one writes wait for next, once all of them have', async () => {
  // The finder alone, over a GitLab that holds every npm metadata read until released.
  const { gitlab, held, reads } = heldNpmMetadataGitlab()
  const finder = createProjectFinder({ gitlab })
  const router = Router.compile(loadCatalog().routes)
  const read = router.match('GET', '/packages/npm/@acme%2Fread')!
  const write = router.match('DELETE', '/packages/npm/-/package/@acme%2Fpkg/dist-tags/latest')!
  // Four reads hold the four slots.
  const reading = Array.from({ length: 4 }, (_, i) => finder.find(read.route, { ...read.params, package_name: `@acme/read-${i}` }, FINDER_JOB))
  assert.equal(reads(), 4)
  const [first, second, third, fourth] = [leavingClient(), leavingClient(), leavingClient(), leavingClient()]
  const firstWrite = finder.find(write.route, write.params, undefined, first.waiter)
  // Writes that come meanwhile wait for the next lookup, begun once the first has settled.
  const nextWrites = [finder.find(write.route, write.params, undefined, second.waiter), finder.find(write.route, write.params, undefined, third.waiter)]
  first.leave()
  await assert.rejects(Promise.resolve(firstWrite), (err: unknown) => err instanceof LookupDropped)
  assert.equal(finder.stats().slots.npm_metadata.dropped, 1)
  // The next lookup is begun for the two writes waiting; one goes, the other stays: it waits.
  await eventually(() => finder.stats().slots.npm_metadata.waiting === 1, { message: 'the next lookup waiting' })
  second.leave()
  assert.equal(finder.stats().slots.npm_metadata.waiting, 1)
  for (const release of held.splice(0)) release()
  for (const found of await Promise.all(reading)) assert.deepEqual(found, { kind: 'project', id: 200 })
  await eventually(() => held.length === 1, { message: 'the next lookup asked' })
  assert.equal(reads(), 5)
  // A write that comes while it runs waits for the one after, which it alone wants: it goes, nothing is asked.
  const last = finder.find(write.route, write.params, undefined, fourth.waiter)
  fourth.leave()
  for (const release of held.splice(0)) release()
  for (const found of await Promise.all(nextWrites)) assert.deepEqual(found, { kind: 'project', id: 200 })
  await assert.rejects(Promise.resolve(last), (err: unknown) => err instanceof LookupDropped)
  assert.equal(reads(), 5, 'no lookup for writes gone')
  assert.deepEqual(finder.stats().slots.npm_metadata, { running: 0, waiting: 0, owners: 0, dropped: 2 })
})

test('forward-auth: the lookup of a decision request whose proxy went away is dropped as well', async t => {
  const g = await lookupsWorld(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = g.gate.authAddress()!.port
  g.gitlab.hold.add('packages')
  const running = Array.from({ length: 8 }, (_, i) => send(g.url, 'GET', `${MAVEN}/com/acme/running-${i}/1.0/x.jar`, job(TOKENS.tools)))
  await eventually(async () => (await lookups(g, 'maven_listings')).running === 8, { message: 'eight listings asked' })
  const gonePath = `${MAVEN}/com/acme/gone/1.0/x.jar`
  const proxy = leavingAt(auth, `GET / HTTP/1.1\r\nHost: gate\r\nX-Original-Method: GET\r\nX-Original-URI: ${gonePath}\r\nJOB-TOKEN: ${TOKENS.tools}\r\n\r\n`)
  await eventually(async () => (await lookups(g, 'maven_listings')).waiting === 1, { message: 'the decision\'s lookup waiting' })
  proxy.destroy()
  await eventually(async () => (await lookups(g, 'maven_listings')).dropped === 1, { message: 'the decision\'s lookup dropped' })
  const line = await decisionOf(g, gonePath)
  assert.deepEqual([line.decision, line.reason, line.stage], ['error', 'CLIENT_ABORTED', 'resolve_grants'])
  g.gitlab.hold.delete('packages')
  g.gitlab.release()
  for (const answer of await Promise.all(running)) assert.equal(answer.status, 200)
  assert.ok(!lookupsAsked(g, 'maven').includes('com/acme/gone'))
  assert.deepEqual(await lookups(g, 'maven_listings'), { running: 0, waiting: 0, dropped: 1 })
})

/**
 * Job lib's client asks `gonePath` and goes away while the job's token is resolved; a second
 * request of the job, `livePath`, waits on the same resolution. Both go on at once: the first
 * begins the lookup and, its client gone, has it dropped before it waits for any slot; the
 * second comes while that drop is still on its way, and shares the lookup.
 */
async function joinsDroppedLookup (g: TestGate, queue: Queue, gonePath: string, livePath: string): Promise<void> {
  g.gitlab.hold.add('job')
  const goneClient = leaving(g, gonePath, TOKENS.lib)
  await eventually(async () => await requestsInFlight(g) === 1, { message: 'the request about to go in the gate' })
  const live = send(g.url, 'GET', livePath, job(TOKENS.lib))
  await eventually(async () => await requestsInFlight(g) === 2, { message: 'the live request in the gate' })
  goneClient.destroy()
  // The client's end reached the gate before this scrape's request did.
  await requestsInFlight(g)
  g.gitlab.hold.delete('job')
  g.gitlab.release()
  const answer = await live
  assert.equal(answer.status, 200, answer.text)
  assert.equal((await decisionOf(g, livePath)).accessed_project_id, 200)
  assert.equal(g.seen.filter(s => s.url === livePath).length, 1, 'the live request forwarded')
  await eventually(async () => await requestsInFlight(g) === 0, { message: 'every request over' })
  assert.equal(g.seen.filter(s => s.url === gonePath && gonePath !== livePath).length, 0, 'the gone one not forwarded')
  assert.deepEqual(await lookups(g, queue), { running: 0, waiting: 0, dropped: 1 })
}

test('npm: a live request that shares a lookup being dropped for a gone client has it asked anew, never 503', async t => {
  const g = await lookupsWorld(t)
  g.gitlab.packages.push(pkg('@acme/libpkg', '1.0.0', 'npm', 200, '2026-01-01T00:00:00Z'))
  await joinsDroppedLookup(g, 'npm_metadata', `${NPM}/@acme%2Flibpkg`, `${NPM}/@acme%2Flibpkg`)
  assert.deepEqual(lookupsAsked(g, 'npm'), ['@acme/libpkg'])
})

test('Maven: a live request whose path shares a listing being dropped for a gone client has it read anew, never 503', async t => {
  const g = await lookupsWorld(t)
  g.gitlab.packages.push(pkg('com/acme/libpkg', '1.0', 'maven', 200, '2026-01-01T00:00:00Z'))
  await joinsDroppedLookup(g, 'maven_listings', `${MAVEN}/com/acme/libpkg/1.0/libpkg-1.0.pom`, `${MAVEN}/com/acme/libpkg/1.0/libpkg-1.0.jar`)
  assert.deepEqual(lookupsAsked(g, 'maven'), ['com/acme/libpkg'])
})

test('Maven: a live request of the same path as a gone client, whose lookup is being dropped, has it asked anew', async t => {
  const g = await lookupsWorld(t)
  g.gitlab.packages.push(pkg('com/acme/libpkg', '1.0', 'maven', 200, '2026-01-01T00:00:00Z'))
  const path = `${MAVEN}/com/acme/libpkg/1.0/libpkg-1.0.jar`
  await joinsDroppedLookup(g, 'maven_listings', path, path)
  assert.deepEqual(lookupsAsked(g, 'maven'), ['com/acme/libpkg'])
})
