// The usage recorder holds at most 10,000 (day, accessed project, job project) keys between two
// writes to the store; a record past them was dropped and counted in a metric only. A job that
// reaches many projects (a group entry that many projects list, or projects whose inbound scope is
// off) fills that batch within one flush interval with one request to each, and every other
// project's usage in that interval was then lost while its report named the day complete: an
// admin narrowing an entry on it removed what those jobs used. Such requests now count as the
// job-project cap's do, and the report names their day in `incomplete_days`.
// Here the recorder and both stores are checked directly; usage-pending-drops-reported.slow.ts
// fills the batch through a real gate.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { createMemoryUsage } from '../../src/grants/usage-memory.ts'
import { createRedisUsage } from '../../src/grants/usage-redis.ts'
import { createUsageRecorder } from '../../src/usage/recorder.ts'
import { daysBetween } from '../../src/usage/types.ts'
import { startRedis } from '../helpers/redis.ts'

const redis = await startRedis({ after })

for (const name of ['memory', 'redis'] as const) {
  test(`${name} store: requests dropped past the pending batch are written as the cap's, per accessed project and day`, async (t) => {
    let usage = createMemoryUsage()
    if (name === 'redis') {
      const client = new Redis(redis.url)
      t.after(() => { client.disconnect() })
      usage = createRedisUsage(client, id => `jtg-test:{p:${id}}:grants`)
    }
    const recorder = createUsageRecorder({ store: usage, limits: { maxJobProjects: 10, retentionDays: 1 }, flushIntervalMs: 60_000, maxPending: 1 })
    const job = (id: number): { jobProjectId: number, jobProjectPath: string, ancestorGroupIds: number[] } => ({ jobProjectId: id, jobProjectPath: `g/${id}`, ancestorGroupIds: [] })
    recorder.record(300, job(1), ['read_packages'])
    recorder.record(200, job(2), ['read_packages'])
    recorder.record(200, job(3), ['admin_packages'])
    recorder.record(400, job(2), [])
    await recorder.close()
    const days = daysBetween(Date.now(), Date.now(), 1)
    assert.deepEqual(await usage.readDroppedUsage(200, days), { [days[0]!]: 2 })
    assert.deepEqual(await usage.readDroppedUsage(400, days), { [days[0]!]: 1 })
    assert.deepEqual(await usage.readDroppedUsage(300, days), {})
    assert.equal((await usage.readUsage(300, days))[0]?.requests, 1)
  })
}

// A batch whose write to the store failed (Redis down for a moment) was lost, counted only in a
// metric, and its days still read as complete; its requests are now written with the next batch
// as dropped ones.
test('a batch whose write failed is written with the next one as dropped requests: its days read incomplete', async () => {
  const usage = createMemoryUsage()
  let failing = true
  const store = {
    recordUsage: async (...args: Parameters<typeof usage.recordUsage>): ReturnType<typeof usage.recordUsage> => {
      if (failing) throw new Error('store down')
      return await usage.recordUsage(...args)
    }
  }
  const failures: unknown[] = []
  const recorder = createUsageRecorder({ store, limits: { maxJobProjects: 10, retentionDays: 1 }, flushIntervalMs: 60_000, onWriteFailed: err => { failures.push(err) } })
  const job = { jobProjectId: 1, jobProjectPath: 'g/1', ancestorGroupIds: [] }
  recorder.record(200, job, ['read_packages'])
  recorder.record(200, job, ['read_packages'])
  recorder.record(300, job, [])
  await recorder.flush()
  assert.equal(failures.length, 1)
  failing = false
  recorder.record(200, job, ['read_packages'])
  await recorder.close()
  const days = daysBetween(Date.now(), Date.now(), 1)
  assert.deepEqual(await usage.readDroppedUsage(200, days), { [days[0]!]: 2 }, 'the two lost requests')
  assert.deepEqual(await usage.readDroppedUsage(300, days), { [days[0]!]: 1 })
  assert.equal((await usage.readUsage(200, days))[0]?.requests, 1, 'the next batch itself is kept')
})
