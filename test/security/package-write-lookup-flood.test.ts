// Regression: an npm dist-tag write through an instance or group route has its project looked up
// afresh (test/security/package-lookup-cache-writes.test.ts), and nothing bounded those lookups.
//
// The users' package rules look the project of such a write up before any credential is checked,
// so a made-up PRIVATE-TOKEN or any Cookie header was enough: every write, at once, had the gate
// ask GitLab for the npm metadata of the name with the service token (a document GitLab builds on
// each call, read up to 16 MiB into the gate's memory), never cached and never shared. Twenty
// writes at once were twenty metadata builds in GitLab and twenty documents held in the gate; a
// client without any token could grow both without bound.
//
// Now a write waits for the next lookup of its name, shared by every write that came while one
// ran (begun after it came, so still an answer GitLab gave after the write arrived), and at most
// eight such lookups run or wait at once: a write past them is refused, 503
// PROJECT_LOOKUPS_BUSY, never decided on an older answer.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, type TestGate } from '../helpers/gate.ts'
import { eventually } from '../helpers/eventually.ts'
import { scrape, total } from '../helpers/metrics.ts'

const TAG = (name: string): string => `/api/v4/packages/npm/-/package/@acme%2F${name}/dist-tags/latest`

/** A dist-tag delete with nothing but a cookie: no token GitLab knows. */
function write (g: TestGate, name: string, i: number): Promise<{ status: number, code: string | undefined }> {
  return fetch(g.url + TAG(name), { method: 'DELETE', headers: { cookie: `session=${i}` } })
    .then(async res => ({ status: res.status, code: ((await res.json()) as { code?: string }).code }))
}

async function inFlight (g: TestGate): Promise<number> {
  return total((await scrape(g.healthUrl)).samples, 'job_token_gate_in_flight_requests')
}

test('writes of one name at once share one lookup begun after they came', async t => {
  const g = await startTestGate(t)
  g.gitlab.packages.push({ id: 1, name: '@acme/pkg', version: '1.0.0', packageType: 'npm', projectId: 200, createdAt: '2026-01-01T00:00:00Z' })
  // GitLab builds the metadata slowly: each lookup is held until released.
  g.gitlab.late.add('npm_metadata')
  const first = write(g, 'pkg', 0)
  await eventually(() => g.gitlab.calls.npm_metadata === 1, { message: 'the first write\'s lookup' })
  // Nineteen more come while it runs: none may take its answer, read before they came.
  const rest = Array.from({ length: 19 }, (_, i) => write(g, 'pkg', i + 1))
  await eventually(async () => await inFlight(g) === 20, { message: 'every write in the gate' })
  assert.equal(g.gitlab.calls.npm_metadata, 1, 'the nineteen wait')
  g.gitlab.release()
  await eventually(() => g.gitlab.calls.npm_metadata === 2, { message: 'the one lookup the others wait for' })
  g.gitlab.late.delete('npm_metadata')
  g.gitlab.release()
  for (const answer of [await first, ...await Promise.all(rest)]) assert.equal(answer.status, 200, JSON.stringify(answer))
  assert.equal(g.gitlab.calls.npm_metadata, 2, 'one lookup for the first write, one for the nineteen after it')
  assert.equal(g.seen.length, 20, 'every write decided and forwarded')
})

test('past eight lookups of writes at once, more writes are refused, never decided unlooked', async t => {
  const g = await startTestGate(t)
  g.gitlab.late.add('npm_metadata')
  // Twenty names, one write each (a made-up name costs GitLab a lookup as well).
  const answers = Array.from({ length: 20 }, (_, i) => write(g, `name${i}`, i))
  const refused: Array<{ status: number, code: string | undefined }> = []
  for (const answer of answers) void answer.then(a => { if (a.status === 503) refused.push(a) })
  await eventually(() => refused.length === 12, { message: 'the writes past eight refused' })
  // Eight lookups: four reading GitLab's metadata, four waiting for it (npm-metadata-lookup-flood.test.ts).
  assert.equal(g.gitlab.calls.npm_metadata, 4)
  assert.deepEqual(refused.map(a => a.code), Array(12).fill('PROJECT_LOOKUPS_BUSY'))
  g.gitlab.late.delete('npm_metadata')
  g.gitlab.release()
  const all = await Promise.all(answers)
  assert.equal(all.filter(a => a.status === 200).length, 8)
  assert.equal(g.seen.length, 8, 'a refused write never reached GitLab')
  // The lookups done, writes are looked up again.
  assert.equal((await write(g, 'name0', 99)).status, 200)
  assert.equal(g.gitlab.calls.npm_metadata, 9)
})
