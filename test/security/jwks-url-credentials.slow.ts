// Finding: GATE_JWT_KEY as a JWKS URL with a user and password (`https://jwks:<password>@gitlab/
// oauth/discovery/keys`, as one writes Basic credentials into a URL) started the gate. fetch()
// refuses such a URL, so every JWT job token was refused (503), and its error quotes the URL
// whole: the warning of every failed refresh wrote the password to the log. With the scheme in
// capitals (`HTTPS://...`) the value was read as a PEM file's name and the start stopped printing
// it whole, password included. Such a URL now stops the start, one line without the password.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { serveOutcome } from '../helpers/serve.ts'

const PASSWORD = 'S3cretJwksPw'

test('GATE_JWT_KEY as a URL with a user or password stops the start, without printing them', () => {
  for (const key of [
    `http://jwks:${PASSWORD}@gitlab.example.com/oauth/discovery/keys`,
    `HTTPS://jwks:${PASSWORD}@gitlab.example.com/oauth/discovery/keys`,
    `https://${PASSWORD}@gitlab.example.com/oauth/discovery/keys`,
    // Does not parse (a port over 65535): refused as a URL, printed without the credentials.
    `https://jwks:${PASSWORD}@gitlab.example.com:99999/oauth/discovery/keys`
  ]) {
    assert.throws(() => loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', GATE_JWT_KEY: key }), (err: Error) => {
      assert.ok(err instanceof ConfigError, `${key}: ${err.message}`)
      assert.match(err.message, /^GATE_JWT_KEY /)
      assert.ok(!err.message.includes(PASSWORD), err.message)
      return true
    })
  }
  // A URL without credentials, and a file, are taken as before.
  assert.equal(loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', GATE_JWT_KEY: 'https://gitlab.example.com/oauth/discovery/keys' }).jwtKey, 'https://gitlab.example.com/oauth/discovery/keys')
  assert.equal(loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab', GATE_JWT_KEY: '/etc/gate/jwt.pem' }).jwtKey, '/etc/gate/jwt.pem')
})

test('serve with such a GATE_JWT_KEY: refused, exit 2, one line without the password', async t => {
  const gitlab = await startFakeGitlab({})
  t.after(() => gitlab.close())
  const jwks = gitlab.url.replace('http://', `http://jwks:${PASSWORD}@`) + '/oauth/discovery/keys'
  const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, GATE_JWT_KEY: jwks })
  assert.equal(outcome.kind, 'refused', 'serve started')
  const { code, stderr } = outcome as { code: number | null, stderr: string }
  assert.equal(code, 2)
  assert.match(stderr, /^job-token-gate: GATE_JWT_KEY must not carry a user or password/)
  assert.equal(stderr.trimEnd().split('\n').length, 1, stderr)
  assert.ok(!stderr.includes(PASSWORD), stderr)
})
