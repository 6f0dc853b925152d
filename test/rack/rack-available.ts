// Ruby and Rack are the oracle of the differential tests: without them those tests fail under
// CI=true, and elsewhere are skipped with a message that says so, never passed silently.

import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { rackUnavailable } from '../helpers/rack-oracle.ts'

/** True when Rack can answer; otherwise fails (CI) or skips the test loudly and returns false. */
export function requireRack (t: TestContext): boolean {
  const missing = rackUnavailable()
  if (missing === null) return true
  if (process.env.CI === 'true') assert.fail(`the Rack differential test needs Ruby and Rack under CI: ${missing}`)
  process.stderr.write(`\n*** NOT RUN: the Rack differential test needs Ruby and Rack: ${missing} ***\n\n`)
  t.skip(`NOT RUN: ${missing}`)
  return false
}
