// Finding: a JSON body's credentials are read member by member, each leaf of a top-level member's
// value under the member's name as Rack reads names (`[job_token]`, `job_token[]`), and the name
// was read again for every leaf: a key of kilobytes cost its length at each one. A member
// `"[aaa...": [1,1,...]`, no token needed, took the gate's CPU for a fifth of a second in a 64 KiB
// body (4 ms for the same body under a short key), a minute in a streamed 8 MiB one (0.2 s), and
// two seconds in 245 bytes of gzip to npm's audit route, which the gate inflates to 200 KiB as
// GitLab does. A member's name is now read once, whatever the number of its leaves.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { jsonCredentials } from '../../src/identity/body-scan.ts'
import { scanJson } from '../../src/identity/json-guard.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const KEY = '[' + 'a'.repeat(5000)
const LEAVES = 2000

/** The calls of RegExp.prototype.exec on the long key (or a text cut from it) while `run` runs. */
function keyReadings (run: () => void): number {
  const exec = RegExp.prototype.exec
  let calls = 0
  RegExp.prototype.exec = function (this: RegExp, input: string) {
    if (typeof input === 'string' && input.length >= 4000 && input.startsWith('[aaa')) calls++
    return exec.call(this, input)
  }
  try {
    run()
  } finally {
    RegExp.prototype.exec = exec
  }
  return calls
}

test('a top-level JSON member\'s name is read once, not once per leaf of its value', () => {
  const body = Buffer.from(JSON.stringify({ [KEY]: Array.from({ length: LEAVES }, (_, i) => i + 1), x: 1 }))
  let found: unknown[] = []
  const buffered = keyReadings(() => { found = jsonCredentials(body) })
  assert.deepEqual(found, [])
  const streamed = keyReadings(() => { found = scanJson(body) })
  assert.deepEqual(found, [])
  // Before: one reading per leaf (2,000).
  assert.ok(buffered <= 2, `the buffered reading read the key ${buffered} times`)
  assert.ok(streamed <= 2, `the streamed reading read the key ${streamed} times`)
})

test('a credential under a long name is still found at every leaf', () => {
  const body = Buffer.from(JSON.stringify({ [KEY + '[job_token]']: ['x', TOKENS.app], [`[job_token]${'[a]'.repeat(2000)}`]: [1, TOKENS.lib] }))
  for (const read of [jsonCredentials, scanJson]) {
    const found = read(body).map(c => ({ secret: c.secret, jobToken: c.jobToken, where: c.where }))
    assert.deepEqual(found, [
      { secret: TOKENS.app, jobToken: true, where: 'body:*' },
      { secret: '1', jobToken: true, where: 'body:job_token' },
      { secret: TOKENS.lib, jobToken: true, where: 'body:job_token' }
    ], read.name)
  }
})

test('such bodies pass the gate: buffered, streamed, and gzip to npm\'s audit route', async t => {
  const g = await startTestGate(t)
  const members = (leaves: number): string => '{"' + KEY + '":[' + '1,'.repeat(leaves) + '1]}'
  const started = performance.now()
  const buffered = await send(g.url, 'POST', '/api/v4/projects/200/issues', { 'content-type': 'application/json' }, members(20_000))
  assert.equal(buffered.status, 200, buffered.text)
  const publish = await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/@acme%2fhello', { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, members(1_000_000))
  assert.equal(publish.status, 200, publish.text)
  const audit = gzipSync(members(60_000), { level: 9 })
  assert.ok(audit.length < 1000, `${audit.length} bytes of gzip`)
  for (let i = 0; i < 5; i++) {
    const res = await send(g.url, 'POST', '/api/v4/packages/npm/-/npm/v1/security/advisories/bulk', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, audit)
    assert.equal(res.status, 200, res.text)
  }
  assert.equal(g.seen.length, 7)
  // A hang detector only: about half a second here, thirteen before; the first test decides.
  const took = performance.now() - started
  assert.ok(took < 5_000, `the seven requests took ${Math.round(took)} ms`)
})
