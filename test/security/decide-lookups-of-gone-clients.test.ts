// The decide stage's own GitLab lookups (a project's facts where only they could turn a deny, the
// job user's `external` flag where an internal project lets the job in) ran to their end after
// every client waiting for them had gone. The GitLab client's pool is as large as the listeners'
// connections: clients that each had one made and left, against a GitLab slow to answer, held
// every connection with calls nobody waited for, and a running job's next lookup was never sent.
// Such a lookup is now given up with its clients, its call aborted, nothing kept.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const INTERNAL_READ = '/api/v4/projects/300/packages/7/package_files/9/download'
/** The listener's connections, and so the GitLab client's. */
const CONNECTIONS = 8

/** A client that sends a job-token GET and leaves when told. */
async function client (url: string, path: string, token: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const s = connect(Number(port), hostname)
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  s.write(`GET ${path} HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${token}\r\n\r\n`)
  return s
}

const cancelled = async (gate: TestGate, endpoint: string): Promise<number> =>
  total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint, outcome: 'cancelled' })

async function get (gate: TestGate, path: string, token: string): Promise<Response> {
  return await fetch(gate.url + path, { headers: { 'job-token': token }, signal: AbortSignal.timeout(20_000) })
}

test('the facts of a project the job is not let into are given up with the clients that asked', async t => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  // The job's identity first, while GitLab answers: then only the facts are asked.
  assert.equal((await get(gate, '/api/v4/projects/100/releases', TOKENS.app)).status, 200)
  gate.gitlab.hold.add('project')
  for (let i = 0; i < 2 * CONNECTIONS; i++) {
    // A project the store does not know: a deny that a public project's facts could turn.
    const s = await client(gate.url, `/api/v4/projects/${90_000 + i}/releases`, TOKENS.app)
    await eventually(() => gate.gitlab.calls.project === 1 + i + 1, { message: `client ${i}'s facts lookup at GitLab` })
    s.destroy()
  }
  await eventually(async () => await cancelled(gate, 'project_facts') === 2 * CONNECTIONS, { message: 'every facts lookup given up' })
  // A running job's next lookup reaches GitLab and is answered.
  gate.gitlab.hold.delete('project')
  const res = await get(gate, '/api/v4/projects/600/releases', TOKENS.app)
  assert.equal(res.status, 403, await res.text())
  gate.gitlab.release()
})

test('a job user\'s external flag, asked where an internal project lets the job in, is given up with its clients', async t => {
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  // other/tools: internal, an allowlist without the jobs' project; its package registry lets in
  // any job whose user is not external.
  gate.gitlab.projects.get(300)!.visibility = 'internal'
  const tokens: string[] = []
  for (let i = 0; i < 2 * CONNECTIONS; i++) {
    const token = `glcbt-64_userjob${String(i).padStart(16, '0')}`
    gate.gitlab.jobs.set(token, { id: 50 + i, status: 'running', projectId: 100, userId: 500 + i })
    tokens.push(token)
    // Each job's identity, while GitLab answers (and the project's facts, kept).
    assert.equal((await get(gate, '/api/v4/projects/100/releases', token)).status, 200)
  }
  const first = await get(gate, INTERNAL_READ, TOKENS.app)
  assert.equal(first.status, 200, await first.text())
  gate.gitlab.hold.add('job_user')
  const before = gate.gitlab.calls.job_user
  for (let i = 0; i < tokens.length; i++) {
    const s = await client(gate.url, INTERNAL_READ, tokens[i]!)
    await eventually(() => gate.gitlab.calls.job_user === before + i + 1, { message: `client ${i}'s user lookup at GitLab` })
    s.destroy()
  }
  await eventually(async () => await cancelled(gate, 'job_user') === 2 * CONNECTIONS, { message: 'every user lookup given up' })
  gate.gitlab.hold.delete('job_user')
  gate.gitlab.jobs.set('glcbt-64_userjoblast0000000000', { id: 49, status: 'running', projectId: 100, userId: 499 })
  const res = await get(gate, INTERNAL_READ, 'glcbt-64_userjoblast0000000000')
  assert.equal(res.status, 200, await res.text())
  gate.gitlab.release()
})
