// A job token's resolution at GitLab was held to its end after every client waiting for it had
// gone (up to GATE_IDENTITY_TIMEOUT_MS). The GitLab client's pool is bounded (as many connections
// as the listeners take client connections): clients that named a new made-up job token each and
// left at once, against a GitLab slow to answer, filled every connection with calls nobody waited
// for, and a running job's token then waited behind them until its timeout (503). A resolution
// whose every client has gone is now given up: its call at GitLab aborted and its connection freed,
// nothing kept for the token. One still wanted by another client runs on.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const RELEASES = '/api/v4/projects/100/releases'
/** The listener's connections, and so the GitLab client's. */
const CONNECTIONS = 8

/** A client that sends a job-token request and leaves when told. */
async function client (url: string, token: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const s = connect(Number(port), hostname)
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  s.write(`GET ${RELEASES} HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${token}\r\n\r\n`)
  return s
}

test('a job token\'s resolution is given up once its clients have gone: their calls at GitLab hold no connection a running job needs', async t => {
  // A timeout that cannot run out during the test: waiting for a connection would be a hang here.
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('job')
  // Twice as many clients as connections, one after another, each leaving once GitLab has its call.
  for (let i = 0; i < 2 * CONNECTIONS; i++) {
    const s = await client(gate.url, `glcbt-${randomBytes(10).toString('hex')}`)
    await eventually(() => gate.gitlab.calls.job === i + 1, { message: `client ${i}'s call at GitLab` })
    s.destroy()
  }
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'job', outcome: 'cancelled' }) === 2 * CONNECTIONS, { message: 'every call given up' })

  // GitLab answers a running job's token at once: nothing the clients that left asked stands before it.
  gate.gitlab.hold.delete('job')
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(10_000) })
  assert.equal(res.status, 200, await res.text())
  gate.gitlab.release()
})

test('a resolution shared by two clients runs on when one leaves; given up with the last, it is asked anew, nothing kept', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('job')
  const leaving = await client(gate.url, TOKENS.app)
  await eventually(() => gate.gitlab.calls.job === 1, { message: 'the first client\'s call at GitLab' })
  const staying = fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(10_000) })
  // The second client shares the call (single flight): once it waits, the first leaves.
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_identity_cache_lookups_total', { result: 'single_flight_wait' }) === 1, { message: 'the second client waits for the same call' })
  leaving.destroy()
  await new Promise(resolve => leaving.once('close', resolve))
  gate.gitlab.release()
  const res = await staying
  assert.equal(res.status, 200, await res.text())
  assert.equal(gate.gitlab.calls.job, 1, 'one call, answered to the client that stayed')

  // A token of another job, whose only client leaves: its call is given up, and the next request
  // with it asks GitLab again and is answered, no failure kept for it.
  gate.gitlab.resetCalls()
  const gone = await client(gate.url, TOKENS.tools)
  await eventually(() => gate.gitlab.calls.job === 1, { message: 'the call of the client about to leave at GitLab' })
  gone.destroy()
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'job', outcome: 'cancelled' }) === 1, { message: 'the call given up' })
  gate.gitlab.hold.delete('job')
  const again = await fetch(gate.url + '/api/v4/projects/300/releases', { headers: { 'job-token': TOKENS.tools }, signal: AbortSignal.timeout(10_000) })
  assert.equal(again.status, 200, await again.text())
  assert.equal(gate.gitlab.calls.job, 2)
  gate.gitlab.release()
})

test('the project lookups a package write has the users\' package rules make, for any client, are given up with their clients', async t => {
  // A package write naming a full path is looked up before any credential is asked about (the
  // users' package rules: src/admin/roles.ts), with any cookie: anyone can have made-up paths looked up.
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('project')
  const { hostname, port } = new URL(gate.url)
  for (let i = 0; i < 2 * CONNECTIONS; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    await new Promise(resolve => s.once('connect', resolve))
    s.write(`PUT /api/v4/projects/acme%2F${randomBytes(6).toString('hex')}/packages/generic/p/1.0.0/f.txt HTTP/1.1\r\nHost: gitlab.example\r\nCookie: theme=dark\r\nContent-Length: 0\r\n\r\n`)
    await eventually(() => gate.gitlab.calls.project === i + 1, { message: `client ${i}'s lookup at GitLab` })
    s.destroy()
  }
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'project_facts', outcome: 'cancelled' }) === 2 * CONNECTIONS, { message: 'every lookup given up' })
  gate.gitlab.hold.delete('project')
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(10_000) })
  assert.equal(res.status, 200, await res.text())
  gate.gitlab.release()
})

test('the lookups of a made-up access token on GraphQL and the configuration API are given up with their clients', async t => {
  // Any string sent as PRIVATE-TOKEN to /api/graphql or the configuration API is asked of GitLab
  // (`GET /personal_access_tokens/self`, as that token) before anything else.
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('token_self')
  const { hostname, port } = new URL(gate.url)
  const body = JSON.stringify({ query: '{ currentUser { id } }' })
  const requests = [
    (token: string) => `POST /api/graphql HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    (token: string) => `GET /api/v4/projects/100/job_token_scope/allowlist HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: ${token}\r\n\r\n`
  ]
  for (let i = 0; i < 2 * CONNECTIONS; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    await new Promise(resolve => s.once('connect', resolve))
    s.write(requests[i % 2]!(`glpat-${randomBytes(10).toString('hex')}`))
    await eventually(() => gate.gitlab.calls.token_self === i + 1, { message: `client ${i}'s lookup at GitLab` })
    s.destroy()
  }
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'token_self', outcome: 'cancelled' }) === 2 * CONNECTIONS, { message: 'every lookup given up' })
  gate.gitlab.hold.delete('token_self')
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(10_000) })
  assert.equal(res.status, 200, await res.text())
  gate.gitlab.release()
})

test('a job project\'s namespace lookup shared by several tokens\' resolutions is given up once none of them waits', async t => {
  const gate = await startTestGate(t, { GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  // Jobs of projects no resolution has read yet, each under groups none has either.
  for (const [project, group, top] of [[900, 30, 31], [901, 32, 33]] as const) {
    gate.gitlab.groups.set(top, { id: top, fullPath: `top${top}`, parentId: null })
    gate.gitlab.groups.set(group, { id: group, fullPath: `top${top}/sub`, parentId: top })
    gate.gitlab.projects.set(project, { id: project, pathWithNamespace: `top${top}/sub/app`, namespace: { id: group, kind: 'group', fullPath: `top${top}/sub`, parentId: top } })
  }
  for (const [endpoint, project] of [['project', 900], ['group', 901]] as const) {
    gate.gitlab.resetCalls()
    const tokens = [0, 1, 2].map(i => `glcbt-64_${endpoint}ns${String(i).padStart(18, '0')}`)
    tokens.forEach((token, i) => gate.gitlab.jobs.set(token, { id: project * 10 + i, status: 'running', projectId: project, userId: 7 }))
    const open = async (): Promise<number> => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_client_connections', { listener: 'api', state: 'open' })
    const others = await open()
    gate.gitlab.hold.add(endpoint)
    const clients: Socket[] = []
    for (const [i, token] of tokens.entries()) {
      clients.push(await client(gate.url, token))
      await eventually(() => gate.gitlab.calls.job === i + 1, { message: `client ${i}'s job at GitLab` })
    }
    await eventually(() => gate.gitlab.calls[endpoint] === 1, { message: `one ${endpoint} lookup for every resolution` })
    const given = async (): Promise<number> => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint, outcome: 'cancelled' })
    for (const s of clients.slice(0, -1)) s.destroy()
    await eventually(async () => await open() === others + 1, { message: 'the gate saw the clients leave' })
    assert.equal(await given(), 0, `the ${endpoint} lookup runs on while one resolution waits`)
    assert.equal(gate.gitlab.calls[endpoint], 1)
    clients.at(-1)!.destroy()
    await eventually(async () => await given() === 1, { message: `the ${endpoint} lookup given up with the last` })
    gate.gitlab.hold.delete(endpoint)
    gate.gitlab.release()
    // Nothing kept: the next resolution asks again, and is answered.
    const res = await fetch(`${gate.url}/api/v4/projects/${project}/releases`, { headers: { 'job-token': tokens[0]! }, signal: AbortSignal.timeout(10_000) })
    assert.equal(res.status, 200, await res.text())
    assert.equal(gate.gitlab.calls[endpoint], 2)
  }
})

test('the lookups of a made-up access token on the gate\'s own GraphQL operations are given up with their clients', async t => {
  // A document of the gate's own fields at /api/graphql is the configuration API's: its access
  // token's scopes are asked of GitLab (`GET /personal_access_tokens/self`) before anything else.
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('token_self')
  const { hostname, port } = new URL(gate.url)
  const body = JSON.stringify({ query: 'query { project(fullPath: "acme/lib") { jobTokenPermissions { packageRegistry { format read write delete configured } } } }' })
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    await new Promise(resolve => s.once('connect', resolve))
    s.write(`POST /api/graphql HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: glpat-${randomBytes(10).toString('hex')}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    await eventually(() => gate.gitlab.calls.token_self === i + 1, { message: `client ${i}'s lookup at GitLab` })
    s.destroy()
  }
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'token_self', outcome: 'cancelled' }) === CONNECTIONS, { message: 'every lookup given up' })
  await eventually(() => gate.logs.filter(l => l.reason === 'CLIENT_ABORTED').length === CONNECTIONS, { message: 'each request ended as a client gone' })
  assert.ok(!gate.logs.some(l => l.level === 50), 'no failure of the gate logged')
  gate.gitlab.hold.delete('token_self')
  const res = await fetch(gate.url + RELEASES, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(10_000) })
  assert.equal(res.status, 200, await res.text())
  gate.gitlab.release()
})
