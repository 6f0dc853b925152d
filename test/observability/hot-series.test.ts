// The contract guard for src/metrics/hot.ts: HotCounter and HotHistogram are handed to a
// prom-client Registry that formats what their get() returns, which prom-client does not
// document. If an upgrade changes that, these fail before a dashboard goes blank.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { Registry } from 'prom-client'
import { HotCounter, HotHistogram, PROM_CLIENT_CHECKED, registerHot } from '../../src/metrics/hot.ts'

test('the installed prom-client is the minor version src/metrics/hot.ts was checked against', () => {
  const { version } = createRequire(import.meta.url)('prom-client/package.json') as { version: string }
  const minor = (v: string): string => v.split('.').slice(0, 2).join('.')
  assert.equal(minor(version), minor(PROM_CLIENT_CHECKED), `prom-client ${version}: check src/metrics/hot.ts against it (this file and histograms.test.ts), then update PROM_CLIENT_CHECKED`)
})

test('a prom-client Registry exposes hot series exactly as its own counters and histograms', async () => {
  const registry = new Registry()
  const counter = registerHot(registry, new HotCounter('t_requests_total', 'Requests', ['decision', 'method']))
  const histogram = registerHot(registry, new HotHistogram('t_duration_seconds', 'Duration', 'decision', [0.1, 1]))
  const plain = registerHot(registry, new HotHistogram('t_plain_seconds', 'Plain', null, [0.5]))
  counter.inc('allow', 'GET')
  counter.inc('allow', 'GET')
  counter.inc('deny', 'POST')
  histogram.zero('deny')
  for (const v of [0.05, 0.5, 5]) histogram.observe(v, 'allow')
  plain.observe(0.25)
  assert.equal(await registry.metrics(), [
    '# HELP t_requests_total Requests',
    '# TYPE t_requests_total counter',
    't_requests_total{decision="allow",method="GET"} 2',
    't_requests_total{decision="deny",method="POST"} 1',
    '',
    '# HELP t_duration_seconds Duration',
    '# TYPE t_duration_seconds histogram',
    't_duration_seconds_bucket{le="0.1",decision="deny"} 0',
    't_duration_seconds_bucket{le="1",decision="deny"} 0',
    't_duration_seconds_bucket{le="+Inf",decision="deny"} 0',
    't_duration_seconds_sum{decision="deny"} 0',
    't_duration_seconds_count{decision="deny"} 0',
    't_duration_seconds_bucket{le="0.1",decision="allow"} 1',
    't_duration_seconds_bucket{le="1",decision="allow"} 2',
    't_duration_seconds_bucket{le="+Inf",decision="allow"} 3',
    't_duration_seconds_sum{decision="allow"} 5.55',
    't_duration_seconds_count{decision="allow"} 3',
    '',
    '# HELP t_plain_seconds Plain',
    '# TYPE t_plain_seconds histogram',
    't_plain_seconds_bucket{le="0.5"} 1',
    't_plain_seconds_bucket{le="+Inf"} 1',
    't_plain_seconds_sum 0.25',
    't_plain_seconds_count 1',
    ''
  ].join('\n'))
  counter.reset()
  assert.doesNotMatch(await registry.metrics(), /^t_requests_total\{/m, 'reset empties the series')
})
