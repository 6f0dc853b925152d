// Finding: nothing the store writes for a project (its document, version, path entry, audit
// stream) expires, yet the gate ran on a Redis whose maxmemory policy evicts any key when full
// (allkeys-lru and the other allkeys-* policies, common on a Redis shared with caches). Filled up,
// that Redis dropped allowlists with no invalidation: every replica then read the project as
// unknown, which with GATE_UNKNOWN_PROJECT=allow let every job token through (a project that
// allowlisted one job project was open to all), and in the default mode denied the jobs it
// allowlisted; versions started again and the audit trail was gone. The start now refuses such a
// Redis.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

test('a Redis that may evict any key is refused at start, before it can drop an allowlist', async t => {
  const redis = await startRedis(t, { args: ['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru'] })
  const env = { GATE_REDIS_URL: redis.url, GATE_UNKNOWN_PROJECT: 'allow' }
  let started: Awaited<ReturnType<typeof startTestGate>>
  try {
    started = await startTestGate(t, env)
  } catch (err) {
    assert.match((err as Error).message, /maxmemory-policy allkeys-lru/)
    // The same Redis without eviction is accepted.
    redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
    const g = await startTestGate(t, env)
    assert.equal((await send(g.url, 'GET', '/api/v4/projects/300/packages', { 'job-token': TOKENS.app })).status, 403, 'other/tools allowlists nobody')
    return
  }
  // Started: fill Redis as other users of it would, and the allowlists are gone.
  const g = started
  const job = { 'job-token': TOKENS.app }
  assert.equal((await send(g.url, 'GET', '/api/v4/projects/300/packages', job)).status, 403)
  const filler = 'x'.repeat(10_000)
  for (let i = 0; i < 800; i++) redis.cli('SET', `other-app:${i}`, filler)
  await new Promise(resolve => setTimeout(resolve, 10_500))
  const after = await send(g.url, 'GET', '/api/v4/projects/300/packages', job)
  assert.fail(`the gate started on an evicting Redis; once it filled, other/tools answered ${after.status} to a job it does not allowlist`)
})
