// Regression: recognising a job token JWT sent without `glcbt-` (token-shape.ts,
// isBareJobTokenJwt) parsed the payload of every string that starts as a JWT with JSON.parse, on
// every header word, parameter and body leaf. A payload that is not JSON threw, and an exception
// costs microseconds: a body of `eyJ.A.` leaves, no credential among them, cost twenty to fifty
// times the CPU of a body of any other leaves (a streamed 12 MB npm publish body, 9 s of the
// gate's CPU instead of 0.4 s; a 64 KiB form 50 ms instead of 5). The payload's text is now
// searched for a build's subject instead, and nothing throws.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { isBareJobTokenJwt, isJobTokenShape } from '../../src/identity/token-shape.ts'
import { scanJson } from '../../src/identity/json-guard.ts'
import { formCredentials } from '../../src/identity/body-scan.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const b64 = (s: string): string => Buffer.from(s).toString('base64url')
const HEADER = b64('{"kid":"k","typ":"JWT","alg":"RS256"}')

test('strings that start as a JWT and are no job token are decided without parsing their payload', () => {
  const leaves = ['eyJ.A.', 'eyJ.AAAA.', `${HEADER}.${b64('{"sub":')}.x`, `${HEADER}.${b64('{"x":1')}.x`, `${HEADER}.${b64('{}')}.x`, `${HEADER}.${b64('null')}.x`]
  const parse = JSON.parse
  let calls = 0
  JSON.parse = ((...args: Parameters<typeof JSON.parse>) => { calls++; return parse(...args) }) as typeof JSON.parse
  try {
    for (const leaf of leaves) assert.equal(isJobTokenShape(leaf), false, leaf)
    // A body of them: each leaf is one check.
    assert.deepEqual(formCredentials(Buffer.from(Array.from({ length: 1000 }, (_, i) => `x=${leaves[i % leaves.length]!}`).join('&'))), [])
  } finally {
    JSON.parse = parse
  }
  assert.equal(calls, 0, 'JSON.parse throws on most of these: an exception per leaf')
  assert.deepEqual(scanJson(Buffer.from(JSON.stringify({ x: leaves }))), [])
})

test('a build subject is found as GitLab\'s JSON writes it, and only as a subject', () => {
  // Ruby's own JSON, as ruby-jwt writes a payload: compact, with escape_slash (script_safe in
  // newer versions of the json gem), and pretty.
  const ruby = execFileSync('ruby', ['-rjson', '-e', `
    p = { 'sub' => 'gid://gitlab/Ci::Build/42', 'aud' => 'gitlab-authz-token', 'version' => '0.1.0' }
    puts JSON.generate([JSON.generate(p), JSON.generate(p, escape_slash: true), JSON.pretty_generate(p).gsub("\\n", "\\r\\n")])`], { encoding: 'utf8' })
  const written = JSON.parse(ruby) as string[]
  assert.equal(written.length, 3)
  assert.ok(written[1]!.includes('\\/'), written[1])
  for (const json of written) {
    assert.equal(isBareJobTokenJwt(`${HEADER}.${b64(json)}.c2ln`), true, json)
  }
  for (const json of [
    '{"sub":"project_path:acme/app:ref_type:branch:ref:main","job_id":"42"}',
    '{"sub":"gid://gitlab/Ci::Pipeline/42"}',
    '{"sub":"x gid://gitlab/Ci::Build/42"}',
    '{"subject":"gid://gitlab/Ci::Build/42"}',
    '{"sub":42}',
    '{"access_token":"glpat-x","user_id":1}'
  ]) {
    assert.equal(isBareJobTokenJwt(`${HEADER}.${b64(json)}.c2ln`), false, json)
  }
})

test('a streamed JSON body of such leaves reaches GitLab', async t => {
  const g = await startTestGate(t)
  const PUBLISH = '/api/v4/projects/200/packages/npm/@acme%2fhello'
  const body = (leaf: string): string => '{"x":[' + Array.from({ length: 600_000 }, () => JSON.stringify(leaf)).join(',') + ']}'
  const cpu = async (bytes: string): Promise<number> => {
    const before = process.cpuUsage()
    const res = await fetch(g.url + PUBLISH, { method: 'PUT', headers: { 'job-token': TOKENS.lib, 'content-type': 'application/json' }, body: bytes })
    assert.equal(res.status, 200, await res.text())
    const used = process.cpuUsage(before)
    return (used.user + used.system) / 1000
  }
  await cpu(body('xxxxxx')) // warm up
  const plain = await cpu(body('xxxxxx'))
  const jwts = await cpu(body('eyJ.A.'))
  t.diagnostic(`plain leaves ${Math.round(plain)} ms of CPU, eyJ.A. leaves ${Math.round(jwts)} ms`)
  // Two to five times with the search (base64 and a regular expression per leaf), fifty with an
  // exception per leaf: too close to bound with a tenfold margin, so only reported here; the
  // first test decides.
  assert.equal(g.seen.length, 3, 'each body reached GitLab: none holds a credential')
})
