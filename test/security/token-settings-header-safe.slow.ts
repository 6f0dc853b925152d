// Finding: GATE_ADMIN_TOKEN and GATE_SERVICE_TOKEN were taken with a newline at their end, which
// `echo` leaves in a Kubernetes Secret. A header cannot carry one: the operator's PRIVATE-TOKEN
// never matched the operator token, so the configuration API took it for a user's token and the
// gate sent the operator token to GitLab (`/personal_access_tokens/self`, `/oauth/token/info`,
// `/projects/:id`) to ask whose it was; and the service token could not be sent at all, every
// lookup failing (job tokens refused 502) with a start that said nothing of why. Such a value
// now stops the start, naming the variable, never printing it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { serveOutcome } from '../helpers/serve.ts'

const ADMIN = '0123456789abcdef0123456789abcdef'

test('an operator or service token a header cannot carry as written stops the start, without printing it', () => {
  for (const env of ['GATE_ADMIN_TOKEN', 'GATE_SERVICE_TOKEN']) {
    for (const value of [`${ADMIN}\n`, `${ADMIN}\r\n`, ` ${ADMIN}`, `${ADMIN}\t`, `${ADMIN.slice(0, 20)}\n${ADMIN.slice(20)}`, `${ADMIN}\u0000`]) {
      assert.throws(() => loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', [env]: value }), (err: Error) => {
        assert.ok(err instanceof ConfigError, `${JSON.stringify(value)}: ${err.message}`)
        assert.ok(err.message.startsWith(`${env} has white space at an end or a control character`), err.message)
        assert.ok(!err.message.includes(ADMIN.slice(0, 12)), err.message)
        return true
      }, `${env}=${JSON.stringify(value)}`)
    }
    // Spaces between visible characters travel in a header as they are.
    assert.equal(loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', [env]: `${ADMIN} x` })[env === 'GATE_ADMIN_TOKEN' ? 'adminToken' : 'serviceToken'], `${ADMIN} x`)
  }
})

test('serve with the operator token ending in a newline: refused, exit 2, one line without the token', async t => {
  const gitlab = await startFakeGitlab({})
  t.after(() => gitlab.close())
  const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, GATE_ADMIN_TOKEN: `${ADMIN}\n` })
  assert.equal(outcome.kind, 'refused', 'serve started')
  const { code, stderr } = outcome as { code: number | null, stderr: string }
  assert.equal(code, 2, stderr)
  assert.equal(stderr.trimEnd().split('\n').length, 1, stderr)
  assert.match(stderr, /^job-token-gate: GATE_ADMIN_TOKEN has white space at an end or a control character/)
  assert.ok(!stderr.includes(ADMIN.slice(0, 12)), stderr)
})
