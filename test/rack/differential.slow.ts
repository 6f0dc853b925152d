// The differential test against Rack, long: 100,000 generated requests (`npm run test:rack`, also
// part of `npm run test:slow`). See differential.ts; RACK_SEED, RACK_RUNS and RACK_LANES replay a run.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { differentialSettings, runDifferential } from './differential.ts'
import { requireRack } from './rack-available.ts'

test('the gate finds every job token Rack finds, and routes the method Rack routes (100,000 requests)', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const { runs, seed, lanes } = differentialSettings(100_000)
  const report = await runDifferential(oracle, runs, seed, lanes, line => { t.diagnostic(line) })
  t.diagnostic(`${report.runs} requests in ${(report.ms / 1000).toFixed(1)} s; ${report.withJobToken} held a job token Rack reads; ${report.overridden} had their method overridden`)
  t.diagnostic(`outcomes: ${JSON.stringify(report.outcomes)}`)
  assert.ok(report.withJobToken > runs / 10, `only ${report.withJobToken} requests held a job token Rack reads`)
  assert.ok((report.outcomes['passed with a job token'] ?? 0) > runs / 20, 'too few requests passed with a job token to tell anything')
  assert.ok(report.overridden > runs / 50, `only ${report.overridden} requests had their method overridden by Rack`)
})
