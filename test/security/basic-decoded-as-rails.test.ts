// Finding: `Authorization: Basic -<base64 of gitlab-ci-token:TOKEN>` (a '-' or '_' anywhere in
// the base64) was decoded by Node as base64url into garbage, so the gate saw no job token and
// forwarded the request unchecked, while Rails (Ruby's Base64.decode64 skips every byte outside
// the alphabet) authenticated the job. Terraform state writes, lock deletes, Maven PUT, generic
// GET and Conan were reachable from a project that is not allowlisted; the forward-auth
// endpoint and the configuration API read Basic the same way.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { adminGate } from '../helpers/admin-gate.ts'

const b64 = (s: string): string => Buffer.from(s).toString('base64')
/** Shapes of the same credentials that Ruby decodes alike and Node's base64 does not. */
const SHAPES: ReadonlyArray<readonly [string, (user: string, password: string) => string]> = [
  ['a leading -', (u, p) => `-${b64(`${u}:${p}`)}`],
  ['a _ inside', (u, p) => b64(`${u}:${p}`).replace(/^(.{6})/, '$1_')],
  ['spaces and dots inside', (u, p) => b64(`${u}:${p}`).replace(/^(.{4})(.{4})/, '$1 .$2')],
  ['= between whole groups', (u, p) => `${b64(`${u}:${p}`.slice(0, 12))}=${b64(`${u}:${p}`.slice(12))}`]
]

// other/tools (300) is not on acme/lib's (200) allowlist.
const REQUESTS: ReadonlyArray<readonly [string, string]> = [
  ['POST', '/api/v4/projects/200/terraform/state/production'],
  ['DELETE', '/api/v4/projects/200/terraform/state/production/lock'],
  ['PUT', '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar'],
  ['GET', '/api/v4/projects/200/packages/generic/pkg/1.0/file.bin']
]

test('a non-allowlisted job token in oddly encoded Basic credentials is refused; nothing reaches the upstream', async t => {
  const g = await startTestGate(t)
  for (const [shape, encode] of SHAPES) {
    for (const [method, path] of REQUESTS) {
      const answer = await send(g.url, method, path, { authorization: `Basic ${encode('gitlab-ci-token', TOKENS.tools)}` }, method === 'GET' || method === 'DELETE' ? undefined : 'x')
      assert.equal(answer.status, 403, `${shape}, ${method} ${path}: ${answer.text}`)
      assert.equal(answer.json().code, 'NOT_ALLOWLISTED')
    }
  }
  assert.equal(g.seen.length, 0)
  // The same shapes carry an allowed token through: the gate reads them, it does not refuse them.
  const ok = await send(g.url, 'GET', '/api/v4/projects/100/packages/generic/pkg/1.0/file.bin', { authorization: `Basic -${b64(`gitlab-ci-token:${TOKENS.app}`)}` })
  assert.equal(ok.status, 200)
})

test('forward-auth reads Basic as Rails does', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const [shape, encode] of SHAPES) {
    const answer = await send(auth, 'GET', '/', {
      'x-original-method': 'PUT',
      'x-original-uri': '/api/v4/projects/200/packages/maven/com/acme/lib/1.0/lib-1.0.jar',
      authorization: `Basic ${encode('gitlab-ci-token', TOKENS.tools)}`
    })
    assert.equal(answer.status, 403, shape)
  }
})

test('with GATE_UNRESOLVED_PROJECT=deny and GATE_NON_API_JOB_TOKENS=deny, odd Basic still counts as a job token', async t => {
  const g = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'deny', GATE_NON_API_JOB_TOKENS: 'deny' })
  const credentials = `Basic -${b64(`gitlab-ci-token:${TOKENS.tools}`)}`
  const nonApi = await send(g.url, 'GET', '/acme/lib.git/info/refs?service=git-upload-pack', { authorization: credentials })
  assert.equal(nonApi.status, 403)
  assert.equal(nonApi.json().code, 'NON_API_JOB_TOKEN')
  const conan = await send(g.url, 'GET', '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable/download_urls', { authorization: credentials })
  assert.equal(conan.status, 403)
  assert.equal(conan.json().code, 'PROJECT_NOT_IN_URL')
  assert.equal(g.seen.length, 0)
})

test('the configuration API refuses a job token in odd Basic credentials as a job token', async t => {
  const g = await adminGate(t)
  for (const [shape, encode] of SHAPES) {
    const answer = await send(g.url, 'GET', '/api/v4/projects/200/job_token_permissions', { authorization: `Basic ${encode('gitlab-ci-token', TOKENS.tools)}` })
    assert.equal(answer.status, 403, `${shape}: ${answer.text}`)
    assert.equal(answer.json().code, 'ADMIN_JOB_TOKEN_REFUSED')
  }
  assert.equal(g.seen.length, 0)
})
