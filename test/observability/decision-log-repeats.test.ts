// The decision log's repeat window: an allowed or no-job-token decision the same as one written
// in the current window is not written again (the default: 60 s); every deny, would_deny,
// deferred and error is; the metrics count every request either way.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createDecisionLog, REPEAT_WINDOW_MAX_KEYS } from '../../src/gate/decision-log.ts'
import { newExchange, type Exchange } from '../../src/gate/pipeline.ts'
import { createCanonicalizer } from '../../src/routing/canonical.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const routeA = { id: 'a', method: 'GET', pattern: '/projects/:id/packages', policies: ['read_packages'], skipPolicies: false, resource: 'packages', title: 'a', accessedProject: 'project' }
const routeB = { ...routeA, id: 'b', pattern: '/projects/:id/releases', resource: 'releases' }
const identity = (jobId: number): Exchange['identity'] => ({ jobId, jobProjectId: 34, jobProjectPath: 'g/p', ancestorGroupIds: [5], userId: 7 })

function decisions (windowMs: number): { log: (x: Exchange, id: string, status?: number) => void, written: () => string[], clock: { t: number } } {
  const lines: string[] = []
  const clock = { t: 1000 }
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push((JSON.parse(line) as { request_id: string }).request_id) } })
  const decisionLog = createDecisionLog(logger, { level: 'info', sampleRate: 1, rawPath: false, repeatWindowMs: windowMs, now: () => clock.t })
  return {
    log: (x, id, status = 200) => { decisionLog(x, id, status, { decisionMs: 1, totalMs: 2 }) },
    written: () => lines.splice(0),
    clock
  }
}

const requested = createCanonicalizer()('GET', '/api/v4/projects/56/packages')
const base = newExchange('GET', '/api/v4/projects/56/packages', {}, [], null, requested)
const allowed = (over: Partial<Exchange> = {}): Exchange =>
  ({ ...base, match: { route: routeA, params: {} } as unknown as Exchange['match'], identity: identity(12), accessedProjectId: 56, verdict: 'allow', reason: 'POLICIES_GRANTED', stage: 'decide', ...over })

test('repeat window: the first of each allowed decision is written, its repeats are not; anything that differs is another decision', () => {
  const { log, written } = decisions(60_000)
  log(allowed(), 'first')
  log(allowed(), 'repeat')
  log(allowed({ identity: identity(13) }), 'other job')
  log(allowed({ accessedProjectId: 57 }), 'other project')
  log(allowed({ match: { route: routeB, params: {} } as unknown as Exchange['match'] }), 'other route')
  log(allowed({ method: 'HEAD' }), 'other method')
  log(allowed(), 'other status', 404)
  log(allowed({ reason: 'DEFAULT_PERMISSIONS' }), 'other reason')
  log(allowed(), 'repeat again')
  log(allowed({ identity: identity(13) }), 'other job again')
  assert.deepEqual(written(), ['first', 'other job', 'other project', 'other route', 'other method', 'other status', 'other reason'])
})

test('repeat window: no-job-token decisions repeat too; denies, would_deny, deferred and errors are always written', () => {
  const { log, written } = decisions(60_000)
  const noToken = { ...base, verdict: 'no_job_token' as const, reason: 'NO_JOB_TOKEN' as const }
  log(noToken, 'n1')
  log(noToken, 'n2')
  for (const verdict of ['deny', 'would_deny', 'deferred', 'error'] as const) {
    log(allowed({ verdict, reason: 'MISSING_POLICIES' }), `${verdict}-1`, 403)
    log(allowed({ verdict, reason: 'MISSING_POLICIES' }), `${verdict}-2`, 403)
  }
  assert.deepEqual(written(), ['n1', 'deny-1', 'deny-2', 'would_deny-1', 'would_deny-2', 'deferred-1', 'deferred-2', 'error-1', 'error-2'])
})

test('repeat window: a decision is written again once a new window begins; 0 writes every one', () => {
  const { log, written, clock } = decisions(60_000)
  log(allowed(), 'w1')
  clock.t += 59_999
  log(allowed(), 'still w1')
  clock.t += 1
  log(allowed(), 'w2')
  log(allowed(), 'still w2')
  assert.deepEqual(written(), ['w1', 'w2'])

  const every = decisions(0)
  for (let i = 0; i < 3; i++) every.log(allowed(), `r${i}`)
  assert.deepEqual(every.written(), ['r0', 'r1', 'r2'])
})

test('repeat window: memory is bounded: past REPEAT_WINDOW_MAX_KEYS distinct decisions the window starts over', () => {
  const { log, written } = decisions(60_000)
  log(allowed(), 'first')
  for (let job = 1; job < REPEAT_WINDOW_MAX_KEYS; job++) log(allowed({ identity: identity(100_000 + job) }), 'distinct')
  assert.equal(written().length, REPEAT_WINDOW_MAX_KEYS)
  log(allowed(), 'first, remembered')
  assert.deepEqual(written(), [], 'the window holds exactly the maximum')
  log(allowed({ identity: identity(1) }), 'one more')
  log(allowed(), 'first, forgotten')
  assert.deepEqual(written(), ['one more', 'first, forgotten'])
})

test('the repeat window is 60 s by default and configurable; a gate with it writes a repeated allow once and counts every request', async (t) => {
  const base = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_SERVICE_TOKEN: 'x' }
  assert.equal(loadConfig(base).decisionLogRepeatWindowMs, 60_000)
  assert.equal(loadConfig({ ...base, GATE_DECISION_LOG_REPEAT_WINDOW_MS: '0' }).decisionLogRepeatWindowMs, 0)
  assert.throws(() => loadConfig({ ...base, GATE_DECISION_LOG_REPEAT_WINDOW_MS: '-1' }), /GATE_DECISION_LOG_REPEAT_WINDOW_MS/)

  const g = await startTestGate(t, { GATE_DECISION_LOG_REPEAT_WINDOW_MS: '60000' })
  for (let i = 0; i < 3; i++) assert.equal((await send(g.url, 'GET', '/api/v4/projects/200/packages', { 'job-token': TOKENS.app, 'x-request-id': `allow-${i}` })).status, 200)
  for (let i = 0; i < 2; i++) assert.equal((await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.app, 'x-request-id': `deny-${i}` })).status, 403)
  const lines = g.logs.filter(l => l.msg === 'decision').map(l => `${String(l.request_id)} ${String(l.decision)}`)
  assert.deepEqual(lines, ['allow-0 allow', 'deny-0 deny', 'deny-1 deny'])
  const metrics = await (await fetch(`${g.healthUrl}/metrics`)).text()
  const allowedCount = metrics.split('\n').filter(l => l.startsWith('job_token_gate_requests_total{') && l.includes('decision="allow"')).reduce((n, l) => n + Number(l.split(' ').pop()), 0)
  assert.equal(allowedCount, 3, 'every allowed request is counted')
})
