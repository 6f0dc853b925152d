// The per-request histograms are kept outside prom-client (src/metrics/hot.ts, HotHistogram):
// check their exposition is a valid Prometheus histogram with the right counts; and the upstream
// status classes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { createMetrics } from '../../src/metrics.ts'

test('decision and request histograms: cumulative buckets, +Inf equals count, one series per decision', async (t) => {
  const g = await startTestGate(t)
  const job = { 'job-token': TOKENS.app }
  for (let i = 0; i < 3; i++) await send(g.url, 'GET', '/api/v4/projects/200/packages', job)
  await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', job)
  const text = (await send(g.healthUrl, 'GET', '/metrics')).text
  for (const metric of ['job_token_gate_decision_duration_seconds', 'job_token_gate_request_duration_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${metric} histogram$`, 'm'))
    for (const [decision, count] of [['allow', 3], ['deny', 1], ['would_deny', 0]] as const) {
      const buckets = [...text.matchAll(new RegExp(`^${metric}_bucket\\{le="([^"]+)",decision="${decision}"\\} (\\S+)$`, 'gm'))]
      assert.ok(buckets.length > 10, `${metric} ${decision} has buckets`)
      const values = buckets.map(b => Number(b[2]))
      for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, 'buckets are cumulative')
      assert.equal(buckets.at(-1)![1], '+Inf')
      assert.equal(values.at(-1), count)
      assert.match(text, new RegExp(`^${metric}_count\\{decision="${decision}"\\} ${count}$`, 'm'))
    }
  }
  const upstream = /^job_token_gate_upstream_headers_duration_seconds_count (\d+)$/m.exec(text)
  assert.equal(upstream?.[1], '3', 'three requests were forwarded')
})

test('upstream statuses are counted by class; anything outside 100-599 is "other"', async () => {
  const metrics = createMetrics()
  for (const status of [99, 100, 204, 302, 404, 503, 599, 600, 700, -5]) {
    metrics.observeRequest({ decision: 'allow', reason: 'ALLOWED', resource: undefined, method: 'GET', decisionSeconds: 0.001, totalSeconds: 0.002, upstreamHeadersSeconds: 0.001, upstreamStatus: status })
  }
  const counts = Object.fromEntries([...(await metrics.scrape()).matchAll(/^job_token_gate_upstream_responses_total\{status_class="([^"]+)"\} (\d+)$/gm)].map(m => [m[1], Number(m[2])]))
  assert.deepEqual(counts, { other: 4, '1xx': 1, '2xx': 1, '3xx': 1, '4xx': 1, '5xx': 2 })
})
