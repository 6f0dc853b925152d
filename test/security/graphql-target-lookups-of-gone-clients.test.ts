// A fine-grained token's GraphQL request names its targets by path (`project(fullPath: ...)`),
// which the gate looks up at GitLab where the token's scopes reach some projects only. Those
// lookups ran to their end after the client had left: the GitLab client's pool is as large as
// the listeners' connections, and clients that each named a made-up path and left, against a
// GitLab slow to answer, held every connection with calls nobody waited for. Such a lookup is
// now given up with its clients, a read's and a write's alike.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS as JOB_TOKENS } from '../helpers/gate.ts'
import { postGraphql, startGraphqlGate, type FakeToken, type GraphqlGate } from '../helpers/graphql-gate.ts'
import { scrape, total } from '../helpers/metrics.ts'

const CONNECTIONS = 8
const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-writer': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project', 'create_markdown_upload'], project_id: 200 }] }
}

async function leaveAfterLookup (g: GraphqlGate, query: string, calls: number, i: number): Promise<void> {
  const { hostname, port } = new URL(g.url)
  const s = connect(Number(port), hostname)
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  const body = JSON.stringify({ query })
  s.write(`POST /api/graphql HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: glpat-lib-writer\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await eventually(() => g.gitlab.calls.project === calls, { message: `client ${i}'s target lookup at GitLab` })
  s.destroy()
}

for (const kind of ['read', 'write'] as const) {
  test(`a GraphQL ${kind}'s target lookups are given up with the clients that asked`, async t => {
    const g = await startGraphqlGate(t, { tokens: TOKENS, env: { GATE_MAX_CONNECTIONS: String(CONNECTIONS) } })
    // The token's scopes first, while GitLab answers.
    const first = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, { 'private-token': 'glpat-lib-writer' })
    assert.deepEqual(first.body, { data: { upstream: true } })
    g.gitlab.hold.add('project')
    const before = g.gitlab.calls.project
    for (let i = 0; i < 2 * CONNECTIONS; i++) {
      const path = `acme/${randomBytes(6).toString('hex')}`
      const query = kind === 'read' ? `{ project(fullPath: "${path}") { id } }` : `mutation { uploadCreate(input: { projectPath: "${path}", file: null }) { errors } }`
      await leaveAfterLookup(g, query, before + i + 1, i)
    }
    await eventually(async () => total((await scrape(g.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'graphql_target_project', outcome: 'cancelled' }) === 2 * CONNECTIONS, { message: 'every target lookup given up' })
    // A live request's lookup reaches GitLab and is answered.
    g.gitlab.hold.delete('project')
    const live = await postGraphql(g.url, { query: '{ project(fullPath: "other/tools") { id } }' }, { 'private-token': 'glpat-lib-writer' })
    assert.equal(live.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', live.text)
    g.gitlab.release()
  })
}

test('a mutation whose client left while the token\'s lookup ran for another client has no target looked up', async t => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const { hostname, port } = new URL(g.url)
  g.gitlab.hold.add('token_self')
  // This client's mutation waits for the token's lookup, which another client's request shares.
  const s = connect(Number(port), hostname)
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  const body = JSON.stringify({ query: `mutation { uploadCreate(input: { projectPath: "acme/${randomBytes(6).toString('hex')}", file: null }) { errors } }` })
  s.write(`POST /api/graphql HTTP/1.1\r\nHost: gitlab.example\r\nPrivate-Token: glpat-lib-writer\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await eventually(() => g.gitlab.tokenSelfCalls === 1, { message: 'the token\'s lookup at GitLab' })
  const staying = postGraphql(g.url, { query: '{ __typename }' }, { 'private-token': 'glpat-lib-writer' })
  // Both requests wait: the second shares the one lookup (one call at GitLab).
  await eventually(async () => total((await scrape(g.healthUrl)).samples, 'job_token_gate_in_flight_requests') === 2, { message: 'the second request waits' })
  assert.equal(g.gitlab.tokenSelfCalls, 1)
  // The first client leaves while the token's lookup runs on for the second.
  s.destroy()
  await eventually(async () => total((await scrape(g.healthUrl)).samples, 'job_token_gate_client_connections', { listener: 'api', state: 'open' }) === 1, { message: 'the gate saw the first client leave' })
  g.gitlab.hold.delete('token_self')
  g.gitlab.hold.add('project')
  g.gitlab.release()
  assert.deepEqual((await staying).body, { data: { upstream: true } })
  await eventually(() => g.logs.some(l => l.reason === 'CLIENT_ABORTED'), { message: 'the mutation ended as a client gone' })
  assert.equal(g.gitlab.calls.project, 0, 'no lookup asked for a client already gone')
  g.gitlab.release()
})

test('the lookups of the packages a GraphQL delete names by ID are given up with the clients that asked', async t => {
  // destroyPackage names a package by global ID; the gate asks GitLab (as the service token) which
  // project it is in before any credential is asked about: any cookie has it asked.
  const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
  gate.gitlab.hold.add('package_query')
  const { hostname, port } = new URL(gate.url)
  for (let i = 0; i < CONNECTIONS; i++) {
    const body = JSON.stringify({ query: `mutation { destroyPackage(input: {id: "gid://gitlab/Packages::Package/${90_000 + i}"}) { errors } }` })
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    await new Promise(resolve => s.once('connect', resolve))
    s.write(`POST /api/graphql HTTP/1.1\r\nHost: gitlab.example\r\nCookie: theme=dark\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    await eventually(() => gate.gitlab.calls.package_query === i + 1, { message: `client ${i}'s package lookup at GitLab` })
    s.destroy()
  }
  await eventually(async () => total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint: 'graphql_package', outcome: 'cancelled' }) === CONNECTIONS, { message: 'every package lookup given up' })
  await eventually(() => gate.logs.filter(l => l.reason === 'CLIENT_ABORTED').length === CONNECTIONS, { message: 'each request ended as a client gone' })
  assert.ok(!gate.logs.some(l => l.level === 50), 'no failure of the gate logged')
  // A running job's next lookup reaches GitLab and is answered.
  gate.gitlab.hold.delete('package_query')
  const res = await fetch(gate.url + '/api/v4/projects/100/releases', { headers: { 'job-token': JOB_TOKENS.app }, signal: AbortSignal.timeout(20_000) })
  assert.equal(res.status, 200, await res.text())
  gate.gitlab.release()
})
