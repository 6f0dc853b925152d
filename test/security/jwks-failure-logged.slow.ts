// Finding: a failed refresh of the JWKS (GATE_JWT_KEY a URL) was told to the resolver's
// onWarning hook, which `serve` never set: while GitLab's key set could not be fetched, job
// tokens were refused 503 (or checked with keys past their age) and the log said nothing of
// why; only a counter in /metrics moved. serve now logs each failed refresh as a warning, with
// the JWKS URL and the failure, never a token.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { eventually } from '../helpers/eventually.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { startServe } from '../helpers/serve.ts'
import { createTestKeys, signJobToken } from '../helpers/tokens.ts'

test('serve logs a failed JWKS refresh, without the token', async t => {
  const gitlab = await startFakeGitlab({ projects: [{ id: 100, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }], groups: [{ id: 10, fullPath: 'acme', parentId: null }] })
  t.after(() => gitlab.close())
  gitlab.failWith.jwks = 503
  const gate = await startServe(t, {
    GATE_UPSTREAM_URL: gitlab.url,
    GATE_SERVICE_TOKEN: gitlab.serviceToken,
    GATE_JWT_KEY: `${gitlab.url}/oauth/discovery/keys`
  })
  const keys = await createTestKeys('k1')
  const token = await signJobToken(keys, 901)
  const res = await fetch(`${gate.api}/api/v4/projects/100/releases`, { headers: { 'job-token': token } })
  assert.equal(res.status, 503)
  await res.arrayBuffer()
  const line = await eventually(() => gate.lines.find(l => typeof l.msg === 'string' && l.msg.startsWith('JWKS refresh')), { message: 'a JWKS refresh warning' })
  assert.equal(line.level, 40)
  assert.match(String(line.msg), /\/oauth\/discovery\/keys/)
  const jwt = token.slice('glcbt-'.length)
  for (const l of gate.lines) {
    const text = JSON.stringify(l)
    assert.ok(!text.includes(jwt) && !text.includes(jwt.split('.')[1]!) && !text.includes(jwt.split('.')[2]!), 'no line holds the token or a part of it')
  }
})
