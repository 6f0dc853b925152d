// The project finder's lookups (the project a group or instance route names: a Conan username's
// path, a Maven name's package listing, GitLab's npm metadata, a group's projects) were dropped
// while they waited for a slot once their clients had gone, but one already asked ran to its end.
// The GitLab client's pool is as large as the listeners' connections: a job that sent requests
// naming made-up packages and closed them, against a GitLab slow to answer, held every connection
// (and every slot) with calls nobody waited for, and its own next lookup, or any other job's, was
// never sent. A lookup whose every request has gone is now given up whether it waits or runs: its
// call aborted, its slot and connection freed, nothing kept.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { scrape, total } from '../helpers/metrics.ts'
import type { Endpoint } from '../helpers/fake-gitlab.ts'

/** The listener's connections, and so the GitLab client's. */
const CONNECTIONS = 8

async function client (url: string, path: string, method = 'GET'): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const s = connect(Number(port), hostname)
  s.on('error', () => {})
  await new Promise(resolve => s.once('connect', resolve))
  s.write(`${method} ${path} HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: ${TOKENS.app}\r\nContent-Length: 0\r\n\r\n`)
  return s
}

const name = (): string => randomBytes(6).toString('hex')

/** Each kind: the fake GitLab's endpoint held, the gate's endpoint label, how many at once, a made-up request, a live one. */
const KINDS: ReadonlyArray<{ kind: string, held: Endpoint, counted: string, atOnce: number, path: () => string, live: string, method?: string }> = [
  { kind: 'a Conan username\'s project', held: 'project', counted: 'project_lookup', atOnce: CONNECTIONS, path: () => `/api/v4/packages/conan/v1/conans/pkg/1.0/acme+${name()}/stable`, live: `/api/v4/packages/conan/v1/conans/pkg/1.0/acme+${name()}/stable` },
  { kind: 'a Maven name\'s package listing', held: 'packages', counted: 'package_lookup', atOnce: CONNECTIONS, path: () => `/api/v4/groups/acme/-/packages/maven/com/acme/${name()}/1.0/x.jar`, live: `/api/v4/groups/acme/-/packages/maven/com/acme/${name()}/1.0/x.jar` },
  { kind: 'GitLab\'s npm metadata of a name', held: 'npm_metadata', counted: 'npm_metadata', atOnce: 4, path: () => `/api/v4/groups/acme/-/packages/npm/@acme%2F${name()}`, live: `/api/v4/groups/acme/-/packages/npm/@acme%2F${name()}` },
  // A write's lookup is asked anew for it, never shared with a read's.
  { kind: 'the npm metadata a dist-tag write reads', held: 'npm_metadata', counted: 'npm_metadata', atOnce: 4, method: 'DELETE', path: () => `/api/v4/groups/acme/-/packages/npm/-/package/@acme%2F${name()}/dist-tags/latest`, live: `/api/v4/groups/acme/-/packages/npm/@acme%2F${name()}` },
  { kind: 'a group\'s projects', held: 'group_projects', counted: 'group_projects', atOnce: CONNECTIONS, path: () => `/api/v4/groups/${name()}/-/packages/pypi/simple`, live: `/api/v4/groups/${name()}/-/packages/pypi/simple` }
]

async function cancelled (gate: TestGate, endpoint: string): Promise<number> {
  return total((await scrape(gate.healthUrl)).samples, 'job_token_gate_gitlab_requests_total', { endpoint, outcome: 'cancelled' })
}

for (const { kind, held, counted, atOnce, path, live, method } of KINDS) {
  test(`the lookups of ${kind} are given up once their clients have gone, running or waiting`, async t => {
    const gate = await startTestGate(t, { GATE_MAX_CONNECTIONS: String(CONNECTIONS), GATE_IDENTITY_TIMEOUT_MS: '60000' }, { asServe: true })
    // The job's token resolved, and the service token's rights read, while GitLab answers.
    assert.equal((await fetch(`${gate.url}/api/v4/groups/${name()}/-/packages/pypi/simple`, { headers: { 'job-token': TOKENS.app } })).status, 200)
    gate.gitlab.resetCalls()
    gate.gitlab.hold.add(held)
    for (let i = 0; i < atOnce; i++) {
      const s = await client(gate.url, path(), method)
      await eventually(() => gate.gitlab.calls[held] === i + 1, { message: `client ${i}'s lookup at GitLab` })
      s.destroy()
    }
    await eventually(async () => await cancelled(gate, counted) === atOnce, { message: 'every lookup given up' })
    // Another job's lookup is asked at once, and answered.
    gate.gitlab.hold.delete(held)
    const res = await fetch(gate.url + live, { headers: { 'job-token': TOKENS.app }, signal: AbortSignal.timeout(20_000) })
    assert.ok(res.status === 200 || res.status === 404, `${res.status} ${await res.text()}`)
    assert.equal(gate.gitlab.calls[held], atOnce + 1)
    gate.gitlab.release()
  })
}
