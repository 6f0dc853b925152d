// A call the gate makes to GitLab outlives a client that leaves (up to GATE_IDENTITY_TIMEOUT_MS),
// and the GitLab client's pool had no connection limit: clients that connected, named a new job
// token and left at once had the gate open a connection to GitLab each. Under an open files limit
// of 512, 600 such clients against a GitLab slow to answer took every descriptor, and the API
// listener accepted nothing (a request without a token: ECONNRESET). The pool now has as many
// connections as the listeners take client connections; calls past that wait within their timeout.
// And a call whose every client has gone is now given up, its connection closed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { eventually } from '../helpers/eventually.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { startServe } from '../helpers/serve.ts'

const OPEN_FILES = 512
const CLIENTS = 600

test('clients that leave before GitLab answers their job token cannot take the descriptors the listeners need', async (t) => {
  if (!requireTool(t, spawnSync('prlimit', ['--version']).status === 0 ? null : 'prlimit (util-linux)')) return
  const gitlab = await startFakeGitlab({
    fallback: (req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'application/json' }); res.end('[]') }
  })
  t.after(() => gitlab.close())
  gitlab.hold.add('job')
  // Calls held longer than the flood takes to send.
  const gate = await startServe(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, GATE_IDENTITY_TIMEOUT_MS: '300000' }, ['prlimit', `--nofile=${OPEN_FILES}:${OPEN_FILES}`, '--'])
  const { hostname, port } = new URL(gate.api)
  for (let i = 0; i < CLIENTS; i++) {
    const s = connect(Number(port), hostname)
    s.on('error', () => {})
    await new Promise(resolve => s.once('connect', resolve))
    s.write(`GET /api/v4/projects/1/packages HTTP/1.1\r\nHost: gitlab.example\r\nJob-Token: glcbt-${randomBytes(10).toString('hex')}\r\n\r\n`)
    await eventually(() => gitlab.calls.job > i || gate.lines.some(l => l.msg === 'client connections cannot be accepted: closed unserved'), { timeoutMs: 60_000, message: `client ${i}'s call at GitLab` })
    s.destroy()
  }
  // Each client's call is given up as it leaves (test/security/gitlab-lookups-of-gone-clients.test.ts):
  // GitLab sees every one, none held past its client.
  assert.equal(gitlab.calls.job, CLIENTS)
  // The listeners still take connections: a request without a token is forwarded and answered.
  const answer = await send(gate.api, 'GET', '/api/v4/projects/1/packages')
  assert.equal(answer.status, 200)
  assert.equal((await send(gate.health, 'GET', '/-/liveness')).status, 200)
  assert.equal(gate.lines.find(l => l.msg === 'client connections cannot be accepted: closed unserved'), undefined)
  gitlab.release()
})
