// npm prints a refused request's `error` field and nothing of `message`: on npm routes the gate
// says GitLab's message in both, so `npm publish` shows which permission is missing. Other
// routes answer GitLab's body as it is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

test('a deny on an npm route carries the message as `error` too; other routes do not', async (t) => {
  const g = await startTestGate(t)
  const npm = await send(g.url, 'PUT', '/api/v4/projects/200/packages/npm/foo', { 'job-token': TOKENS.app })
  assert.equal(npm.status, 403)
  const body = npm.json()
  assert.equal(body.code, 'MISSING_POLICIES')
  assert.match(body.message, /required: admin_packages\.$/)
  assert.equal(body.error, body.message)

  const other = await send(g.url, 'POST', '/api/v4/projects/200/deployments', { 'job-token': TOKENS.app })
  assert.equal(other.status, 403)
  assert.equal(other.json().error, undefined)
  assert.equal(g.seen.length, 0, 'nothing forwarded')
})
