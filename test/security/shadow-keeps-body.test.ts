// Shadow mode forwards a refused request as it came, body included. A refusal of the identity
// stage (a job token GitLab does not know, more than one credential, a job that cannot be
// verified) was forwarded without its body: GitLab got the upload with an empty body
// (Content-Length 0) and, taking the request on another credential, stored an empty package. In
// forward-auth, where the gate reads a body the proxy sends (Traefik forwardBody, Envoy
// with_request_body) through its guard, the guard was skipped, so a credential in the body went
// unchecked: a body refusal, which no mode shadows.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const UPLOAD = '/api/v4/projects/200/packages/generic/tool/1.0/tool.bin'
const UNKNOWN = 'glcbt-64_nosuchjob000000000000000'
const BOUNDARY = 'b0undary'

/** A multipart body over the 64 KiB inspection limit (streamed through the guard); `extra` is one more part. */
function multipart (extra = ''): Buffer {
  return Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n${'x'.repeat(100_000)}\r\n${extra}--${BOUNDARY}--\r\n`)
}

const BODIES: ReadonlyArray<{ name: string, headers: Record<string, string>, body: Buffer }> = [
  { name: 'JSON, read whole', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"select":"package_file","status":"default"}') },
  { name: 'multipart, streamed through the guard', headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, body: multipart() },
  { name: 'raw upload', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(200_000, 7) }
]

const CREDENTIALS: ReadonlyArray<{ name: string, headers: Record<string, string>, code: string }> = [
  { name: 'an unknown job token', headers: { 'job-token': UNKNOWN }, code: 'TOKEN_UNKNOWN' },
  { name: 'a job token and a personal access token', headers: { 'job-token': TOKENS.app, 'private-token': 'glpat-someoneelse0000000' }, code: 'CREDENTIAL_AMBIGUOUS' }
]

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

test('shadow mode: a refused credential is forwarded with the body it came with', async (t) => {
  const settings: ReadonlyArray<Record<string, string>> = [{ GATE_MODE: 'shadow' }, { GATE_SHADOW_RESOURCES: 'packages' }]
  for (const env of settings) {
    const g = await startTestGate(t, env)
    for (const { name: bodyName, headers: typed, body } of BODIES) {
      for (const { name, headers, code } of CREDENTIALS) {
        const what = `${JSON.stringify(env)}, ${bodyName}, ${name}`
        const before = g.seen.length
        const res = await send(g.url, 'PUT', UPLOAD, { ...typed, ...headers }, body)
        assert.equal(res.status, 200, `${what}: ${res.text}`)
        const line = g.logs.filter(l => l.msg === 'decision').at(-1)
        assert.deepEqual([line?.decision, line?.reason], ['would_deny', code], what)
        const seen = g.seen.slice(before)
        assert.equal(seen.length, 1, what)
        assert.equal(seen[0]!.bytes, body.length, `${what}: the body GitLab got`)
        assert.equal(seen[0]!.sha256, sha256(body), what)
      }
    }
  }
})

test('enforce mode: the same requests are refused, nothing forwarded', async (t) => {
  const g = await startTestGate(t)
  for (const { headers: typed, body } of BODIES) {
    for (const { headers, code } of CREDENTIALS) {
      const res = await send(g.url, 'PUT', UPLOAD, { ...typed, ...headers }, body)
      assert.equal(res.status, 401)
      assert.equal(res.json().code, code)
    }
  }
  assert.equal(g.seen.length, 0)
})

test('shadow mode, forward-auth with bodies sent: the guard still reads a refused request\'s body', async (t) => {
  const g = await startTestGate(t, { GATE_MODE: 'shadow', GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const type = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
  const hidden = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="private_token"\r\n\r\nglpat-inthebody00000000\r\n`
  for (const { name, headers } of CREDENTIALS) {
    const clean = await send(auth, 'PUT', UPLOAD, { ...type, ...headers }, multipart())
    assert.equal(clean.status, 200, `${name}: ${clean.text}`)
    assert.equal(clean.headers['x-job-token-gate-decision'], 'would_deny', name)
    const refused = await send(auth, 'PUT', UPLOAD, { ...type, ...headers }, multipart(hidden))
    // The guard's refusal (a second credential in the body), answered after the stages.
    assert.equal(refused.status, 401, `${name}: ${refused.text}`)
    const line = g.logs.filter(l => l.msg === 'decision').at(-1)
    assert.deepEqual([line?.decision, line?.stage], ['deny', 'forward_auth'], name)
  }
})
