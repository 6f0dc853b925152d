// `GET /api/v4/job` is one URL for every token: only the JOB-TOKEN header tells whose job GitLab
// describes, so a cache or proxy in front of GitLab that keys its answers by URL hands one job's
// answer to every token. A job token JWT names its job in `sub` (`gid://gitlab/Ci::Build/<id>`,
// lib/authn/tokens/jwt.rb), and GitLab answers 200 for such a token only for that job: an answer
// for another job was once taken as the token's, so the token of a job in other/tools was decided
// as a job of acme/platform/app and let into what acme/lib's allowlist grants that project. Such an answer
// is a 502 now, never kept.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate } from '../helpers/gate.ts'
import { createTestKeys, signJobToken } from '../helpers/tokens.ts'

// acme/lib (200) lets acme/platform/app (100) read packages; other/tools (300) is not on its allowlist.
const PACKAGES = '/api/v4/projects/200/packages'

for (const verified of [false, true]) {
  test(`an answer of /job for another job than the token's ${verified ? '(signature verified)' : '(no key)'} is no identity`, async t => {
    const keys = await createTestKeys()
    const gate = await startTestGate(t, verified ? { GATE_JWT_KEY: '{gitlab}/oauth/discovery/keys' } : {})
    gate.gitlab.jwks = { keys: [keys.publicJwk] }
    // The token of job 3 (other/tools), answered by something in front of GitLab with job 1 (acme/platform/app).
    const tools = await signJobToken(keys, 3)
    gate.gitlab.jobs.set(tools, { id: 1, status: 'running', projectId: 100, userId: 7 })

    const res = await fetch(gate.url + PACKAGES, { headers: { 'job-token': tools } })
    const body = await res.json() as Record<string, unknown>
    assert.equal(res.status, 502, JSON.stringify(body))
    assert.equal(body.code, 'IDENTITY_LOOKUP_FAILED')
    assert.equal(gate.seen.length, 0, 'nothing forwarded')

    // Not kept: once GitLab answers for the token's own job, that job is decided.
    gate.gitlab.jobs.set(tools, { id: 3, status: 'running', projectId: 300, userId: 8 })
    const again = await fetch(gate.url + PACKAGES, { headers: { 'job-token': tools } })
    const denied = await again.json() as Record<string, unknown>
    assert.equal(again.status, 403, JSON.stringify(denied))
    assert.equal(denied.code, 'NOT_ALLOWLISTED')
    assert.equal(gate.gitlab.calls.job, 2)

    // Another job's answer saying it finished is no verdict on the token either.
    const later = await signJobToken(keys, 5)
    gate.gitlab.jobs.set(later, { id: 2, status: 'success', projectId: 100, userId: 7 })
    const finished = await fetch(gate.url + PACKAGES, { headers: { 'job-token': later } })
    assert.equal(finished.status, 502, await finished.text())
    gate.gitlab.jobs.set(later, { id: 5, status: 'running', projectId: 300, userId: 8 })
    const running = await fetch(gate.url + PACKAGES, { headers: { 'job-token': later } })
    assert.equal(running.status, 403, 'decided on its own job at once, nothing kept')
    await running.arrayBuffer()

    // The token's own job is let in where its project is.
    const own = await signJobToken(keys, 1)
    gate.gitlab.jobs.set(own, { id: 1, status: 'running', projectId: 100, userId: 7 })
    const ok = await fetch(gate.url + PACKAGES, { headers: { 'job-token': own } })
    assert.equal(ok.status, 200, await ok.text())
  })
}
