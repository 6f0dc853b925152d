// Two gate replicas (each its own store connections and cache) sharing one private Redis.
// Their caches hold entries for a minute, so only the invalidation can explain a replica
// noticing a write within milliseconds.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { nextEvent } from './store-contract.ts'
import { allowing, createReplica, measureRevocations, untilDecision, type Replica } from './replica.ts'
import { eventually } from '../helpers/eventually.ts'

const redis = await startRedis({ after })
let prefixes = 0

// What is tested is delivery, not timeouts (outage.test.ts): on a loaded machine a command can
// take longer than the store's default second, which would fail a write or close a read.
const patient = { commandTimeoutMs: 10_000 }
const patientCache = { ttlMs: 60_000, loadTimeoutMs: 10_000 }

async function pair (): Promise<[Replica, Replica]> {
  const keyPrefix = `r${++prefixes}`
  const a = await createReplica({ url: redis.url, keyPrefix, ...patient }, patientCache)
  const b = await createReplica({ url: redis.url, keyPrefix, ...patient }, patientCache)
  after(() => Promise.all([a.close(), b.close()]))
  return [a, b]
}

test('replicas: a revocation written through one replica is enforced by the other', async t => {
  const [a, b] = await pair()
  const job = { jobProjectId: 11, ancestorGroupIds: [] }
  const delivered = nextEvent(b.store, e => e.kind === 'project' && e.projectId === 10)
  await a.store.put(allowing(10, [11]))
  await delivered
  assert.equal((await b.decide(job, 10)).allow, true)
  assert.equal((await b.decide(job, 10)).allow, true)
  assert.equal(b.cache.stats().hits, 1, 'b answers from its cache')

  const started = performance.now()
  await a.store.put(allowing(10, [12]))
  // Pushed invalidation, not the 60 s TTL: the bound only detects a replica that never hears.
  const lag = await untilDecision(b, job, 10, false, started, 10_000)
  const denied = await b.decide(job, 10)
  assert.equal(denied.allow, false)
  assert.equal(denied.allow === false && denied.reason, 'NOT_ALLOWLISTED')
  assert.ok(b.cache.stats().invalidationsReceived >= 1)
  t.diagnostic(`enforced after ${lag.toFixed(1)} ms`)
})

test('replicas: a grant and a rename reach the other replica, negative entries included', async () => {
  const [a, b] = await pair()
  const job = { jobProjectId: 21, ancestorGroupIds: [] }
  assert.equal((await b.decide(job, 20)).reason, 'UNKNOWN_PROJECT', 'b caches "unknown project"')
  assert.equal(await b.cache.resolvePath('acme/target-20'), null, 'and "unknown path"')
  await a.store.put(allowing(20, [21]))
  await untilDecision(b, job, 20, true, performance.now(), 2000)
  assert.equal(await b.cache.resolvePath('ACME/target-20'), 20)
  await a.store.put({ ...allowing(20, [21]), projectPath: 'acme/renamed' })
  await eventually(async () => await b.cache.resolvePath('acme/target-20') === null, { intervalMs: 1, message: 'the old path forgotten by the other replica' })
  assert.equal(await b.cache.resolvePath('acme/renamed'), 20)
})

// The lag itself is a benchmark (npm run bench:invalidation); here every revocation must land.
test('replicas: 100 revocations are all enforced by the other replica, none failing closed', async t => {
  const [a, b] = await pair()
  const result = await measureRevocations(a, b, 100)
  t.diagnostic(`revocation lag over ${result.samples.length}: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, max ${result.max.toFixed(2)} ms`)
  assert.equal(result.samples.length, 100)
  assert.equal(b.cache.stats().failClosed, 0)
  assert.ok(b.cache.stats().invalidationsReceived >= 200)
})

test('replicas: a root namespace setting written through one replica reaches the other\'s cache, and so does its removal', async () => {
  const [a, b] = await pair()
  assert.equal(await b.cache.namespace('acme'), null, 'b caches "no setting"')
  await a.store.putNamespace({ namespacePath: 'acme', jobTokenPoliciesEnabled: false })
  await eventually(async () => (await b.cache.namespace('ACME'))?.jobTokenPoliciesEnabled === false, { intervalMs: 1, message: 'the setting on the other replica' })
  await a.store.deleteNamespace('acme')
  await eventually(async () => await b.cache.namespace('acme') === null, { intervalMs: 1, message: 'the removal on the other replica' })
  assert.ok(b.cache.stats().invalidationsReceived >= 2)
})
