// The observability settings: validated at start-up, naming the variable.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'

const base = { GATE_UPSTREAM_URL: 'http://127.0.0.1:1' }

test('observability settings: defaults and validation', () => {
  const config = loadConfig(base)
  assert.equal(config.logLevel, 'info')
  assert.equal(config.decisionLogLevel, 'info')
  assert.equal(config.decisionLogSampleRate, 1)
  assert.equal(config.logRawPath, false)
  assert.equal(config.usageRecording, true)
  assert.equal(config.usageMaxJobProjects, 500)
  assert.equal(loadConfig({ ...base, GATE_DECISION_LOG_SAMPLE_RATE: '0.25' }).decisionLogSampleRate, 0.25)
  assert.equal(loadConfig({ ...base, GATE_DECISION_LOG_SAMPLE_RATE: '0' }).decisionLogSampleRate, 0)
  for (const bad of ['1.5', '-0.1', 'half', '', '.5', '1e-3']) {
    assert.throws(() => loadConfig({ ...base, GATE_DECISION_LOG_SAMPLE_RATE: bad }), (err: unknown) => err instanceof ConfigError && /GATE_DECISION_LOG_SAMPLE_RATE must be a number from 0 to 1/.test(err.message), bad)
  }
  assert.throws(() => loadConfig({ ...base, GATE_LOG_LEVEL: 'loud' }), /GATE_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent/)
  assert.throws(() => loadConfig({ ...base, GATE_USAGE_MAX_JOB_PROJECTS: '0' }), /GATE_USAGE_MAX_JOB_PROJECTS must be at least 1/)
})
