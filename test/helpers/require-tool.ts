// A test that needs a program this machine may lack (Ruby and Rack, Puma, a package client):
// under CI=true (.ci/run installs them all) a missing one fails the test; elsewhere the test is
// skipped, saying loudly what is missing. Never passed silently.

import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'

/** True when `missing` is null (the program is there); otherwise fails (CI) or skips `t` and returns false. */
export function requireTool (t: TestContext, missing: string | null): boolean {
  if (missing === null) return true
  if (process.env.CI === 'true') assert.fail(`needed under CI: ${missing}`)
  process.stderr.write(`\n*** NOT RUN: ${missing} ***\n\n`)
  t.skip(`NOT RUN: ${missing}`)
  return false
}
