// A node:test reporter for `run-tests.mjs --timings`: appends each top-level test's file and
// duration to the file RUN_TESTS_TIMINGS names, as it ends. Written at once rather than at the end
// of the run: with --test-force-exit the runner may exit before a reporter's stream is read out.
import { appendFileSync } from 'node:fs'

export default async function * timings (source) {
  const out = process.env.RUN_TESTS_TIMINGS
  for await (const event of source) {
    if (out === undefined || (event.type !== 'test:pass' && event.type !== 'test:fail') || event.data.nesting !== 0) continue
    appendFileSync(out, `${event.data.details?.duration_ms ?? 0}\t${event.data.file ?? ''}\n`)
  }
}
