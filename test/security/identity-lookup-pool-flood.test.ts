// Finding: the gate's own calls to GitLab (a job token's /job, the job project's and groups'
// lookups, the configuration API's and the role checks' lookups) went through one undici Pool of
// 16 connections. Anyone, with no token at all, can make the gate call /job: every new
// `glcbt-...` string is one call. While GitLab was slow to answer them, 16 such requests held
// every connection, and every other job's token, the configuration API and the role checks
// waited in the pool's queue behind them, then failed 503 when their timeout ran out (5 s),
// although GitLab had capacity to answer them: the gate was the bottleneck, not GitLab. The
// pool now has no connection limit, as the proxy's upstream pool: a slow call holds only its
// own connection, and each call stays bounded by GATE_IDENTITY_TIMEOUT_MS.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { legacyJobToken } from '../helpers/tokens.ts'

const RELEASES = '/api/v4/projects/100/releases'
/** More than the old pool size (16). */
const FLOOD = 24

test('job tokens GitLab is slow to answer do not hold back the resolution of other jobs\' tokens', async t => {
  // A timeout that cannot run out during the test: waiting in a queue would be a hang here.
  const gate = await startTestGate(t, { GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('job')
  const flood = Array.from({ length: FLOOD }, () => fetch(gate.url + RELEASES, { headers: { 'job-token': legacyJobToken() } }).then(async r => { await r.arrayBuffer(); return r.status }))
  await eventually(() => gate.gitlab.calls.job === FLOOD, { message: `all ${FLOOD} /job calls reach GitLab at once` })

  // GitLab answers everyone else at once; a running job's request is decided meanwhile.
  gate.gitlab.hold.delete('job')
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(10_000) })
  assert.equal(res.status, 200, await res.text())

  gate.gitlab.release()
  assert.deepEqual(new Set(await Promise.all(flood)), new Set([401]), 'the unknown tokens are refused once GitLab answers')
})
