// Ruby and Rack are the oracle of the differential tests: without them those tests fail under
// CI=true, and elsewhere are skipped with a message that says so, never passed silently.

import type { TestContext } from 'node:test'
import { rackUnavailable } from '../helpers/rack-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'

/** True when Rack can answer; otherwise fails (CI) or skips the test loudly and returns false. */
export function requireRack (t: TestContext): boolean {
  const missing = rackUnavailable()
  return requireTool(t, missing === null ? null : `the Rack differential tests need Ruby and Rack: ${missing}`)
}
