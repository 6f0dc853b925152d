// The client connection limit derived from the open files soft limit left two descriptors to each
// client connection: its own, and one for its upstream or GitLab call. But the gate keeps both
// kinds open after a call for the next (the upstream pool's idle connections for up to 30 s, the
// GitLab client's for a few seconds), so connections that each had a request forwarded and then
// one that asks GitLab (a job token to resolve) held three descriptors each: at the derived limit,
// under a soft limit of 512, 84 of 190 such requests on connections the gate had taken were
// answered 503 (IDENTITY_UPSTREAM_UNAVAILABLE: no descriptor left to reach GitLab), what the limit
// was there to prevent. Three descriptors now go to each client connection.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { connectionLimitOf, FD_RESERVE } from '../../src/gate/connections.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { serveUnderFileLimit } from '../helpers/serve.ts'

const OPEN_FILES = 512
const HELD = '/api/v4/projects/2/packages'

test('connections at the derived limit, each with an upstream connection kept and a GitLab call, all answered', async (t) => {
  if (!requireTool(t, spawnSync('prlimit', ['--version']).status === 0 ? null : 'prlimit (util-linux)')) return
  const { gate, gitlab, held } = await serveUnderFileLimit(t, OPEN_FILES, HELD)
  const max = gate.lines.find(l => l.msg === 'client connection limit')?.max_connections as number
  assert.equal(max, connectionLimitOf(undefined, OPEN_FILES, 1).max)
  const { hostname, port } = new URL(gate.api)
  // As many connections as the limit takes, but for a probe's and a scrape's room.
  const n = max - 2
  const sockets: Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  const statuses: string[] = []
  for (let i = 0; i < n; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    s.on('data', (d: Buffer) => { statuses.push(d.toString('latin1').split('\r\n')[0]!) })
    await new Promise(resolve => s.once('connect', resolve))
    sockets.push(s)
  }
  // Each has a request forwarded at once: the upstream pool opens as many connections, and keeps them.
  for (const s of sockets) s.write(`GET ${HELD} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n`)
  await eventually(() => held.length === n, { timeoutMs: 60_000, message: 'every request at the upstream' })
  for (const answer of held.splice(0)) answer()
  await eventually(() => statuses.length === n, { timeoutMs: 60_000, message: 'every request answered' })
  assert.deepEqual(new Set(statuses), new Set(['HTTP/1.1 200 OK']))
  // Then each asks GitLab about a job token, held there: as many GitLab connections, at once.
  statuses.length = 0
  gitlab.hold.add('job')
  for (const s of sockets) s.write(`GET /api/v4/projects/1/packages HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: glcbt-${randomBytes(10).toString('hex')}\r\n\r\n`)
  await eventually(() => gitlab.calls.job + statuses.length >= n, { timeoutMs: 60_000, message: 'every job token at GitLab or answered' })
  assert.equal(statuses.length, 0, `${statuses.length} answered before GitLab did: ${[...new Set(statuses)].join(', ')}`)
  assert.equal(gitlab.calls.job, n)
  assert.equal((await send(gate.health, 'GET', '/-/liveness')).status, 200)
  gitlab.release()
  await eventually(() => statuses.length === n, { timeoutMs: 60_000, message: 'every request answered' })
  assert.deepEqual(new Set(statuses), new Set(['HTTP/1.1 401 Unauthorized']))
})

test('the derived limit leaves three descriptors to each client connection', () => {
  assert.deepEqual(connectionLimitOf(undefined, 512, 1), { max: Math.floor((512 - FD_RESERVE) / 3), source: 'fd_limit' })
  assert.deepEqual(connectionLimitOf(undefined, 1024, 2), { max: Math.floor((1024 - FD_RESERVE) / 3 / 2), source: 'fd_limit' })
})
