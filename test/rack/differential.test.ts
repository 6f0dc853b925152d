// The differential test against Rack, short: 3,000 generated requests in `npm test`.
// The 100,000-request run is differential.slow.ts (`npm run test:rack`). A failure prints the
// seed; RACK_SEED, RACK_RUNS and RACK_LANES replay it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { differentialSettings, runDifferential } from './differential.ts'
import { requireRack } from './rack-available.ts'

test('the gate finds every job token Rack finds, and routes the method Rack routes (3,000 requests)', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const { runs, seed, lanes } = differentialSettings(3_000)
  const report = await runDifferential(oracle, runs, seed, lanes, line => { t.diagnostic(line) })
  t.diagnostic(`outcomes: ${JSON.stringify(report.outcomes)}`)
  // The generator reaches what it is for: requests holding a job token that pass the gate.
  assert.ok(report.withJobToken > runs / 10, `only ${report.withJobToken} requests held a job token Rack reads`)
  assert.ok((report.outcomes['passed with a job token'] ?? 0) > runs / 20, 'too few requests passed with a job token to tell anything')
  assert.ok(report.overridden > runs / 50, `only ${report.overridden} requests had their method overridden by Rack`)
})
