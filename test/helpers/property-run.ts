// The seed and size of a generated-input (fast-check) test: from `<NAME>_SEED` and `<NAME>_RUNS`
// when set, else a fresh seed and the default; printed so a failure can be replayed.

import type { TestContext } from 'node:test'

export function propertyRun (t: TestContext, name: string, defaultRuns: number, about = ''): { readonly seed: number, readonly numRuns: number } {
  const given = process.env[`${name}_SEED`]
  const seed = given !== undefined && given !== '' ? Number(given) : Date.now() % 2_147_483_647
  const numRuns = Number(process.env[`${name}_RUNS`] ?? defaultRuns)
  t.diagnostic(`seed ${seed}, ${numRuns} runs${about === '' ? '' : ` (${about})`}; replay with ${name}_SEED=${seed} ${name}_RUNS=${numRuns}`)
  return { seed, numRuns }
}
