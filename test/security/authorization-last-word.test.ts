// Finding: on routes that authenticate with `http_bearer_token` (Cargo, the Terraform module
// registry) GitLab takes the last word of Authorization whatever the scheme, so
// `Authorization: Foo Bar glcbt-...` is a job token there; the gate read the value after an
// unknown scheme as one opaque credential and forwarded the request unchecked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { rawRequest, send } from '../helpers/http.ts'
import { requirePuma, startPuma } from '../helpers/puma.ts'

for (const authorization of [`Foo Bar ${TOKENS.tools}`, `Token ${TOKENS.tools}`, `${TOKENS.tools}`, `Bearer  ${TOKENS.tools}`]) {
  test(`Authorization: ${authorization.replace(TOKENS.tools, '<job token>')} is read as the job token; nothing reaches the upstream`, async t => {
    const g = await startTestGate(t)
    // A catalog route of a project that does not allowlist the job's project.
    const listed = await send(g.url, 'PUT', '/api/v4/projects/200/packages/generic/pkg/1.0/file.bin', { authorization }, 'x')
    assert.equal(listed.status, 403, listed.text)
    assert.equal(listed.json().code, 'NOT_ALLOWLISTED')
    // The Terraform module registry, a route the catalog does not list.
    const module = await send(g.url, 'PUT', '/api/v4/projects/200/packages/terraform/modules/net/aws/1.0.0/file', { authorization }, 'x')
    assert.equal(module.status, 403, module.text)
    assert.equal(g.seen.length, 0)
  })
}

// Envoy's ext_authz asks an HTTP authorization service with every header once, repeated lines
// joined with ',' (check_request_utils.cc, setHttpRequest), and forwards them to GitLab as lines
// where Authorization is none of its inline headers (a build without the extensions that register
// it, such as the oauth2 and cache filters): Puma joins those with ', ', whose last word
// `http_bearer_token` takes. After a first line longer than an instance prefix, the job token of
// the second line was no word of the gate's reading: 200, NO_JOB_TOKEN, on Cargo and the
// Terraform module registry of a project that does not allowlist the job's.
const FIRST_LINE = `Bearer ${'a'.repeat(80)}`

test('Puma joins the Authorization lines Envoy forwards with \', \': the last word is the second line\'s job token', async t => {
  if (!requirePuma(t)) return
  const puma = await startPuma(t)
  const answer = await rawRequest(Number(new URL(puma.url).port), ['PUT /api/v4/projects/200/packages/cargo/api/v1/crates/new HTTP/1.1', `Authorization: ${FIRST_LINE}`, `Authorization: ${TOKENS.tools}`])
  const authorization = String((JSON.parse(answer.body) as Record<string, string>).HTTP_AUTHORIZATION)
  assert.equal(authorization, `${FIRST_LINE}, ${TOKENS.tools}`, `Puma ${puma.version}`)
  assert.equal(authorization.split(/\s+/).at(-1), TOKENS.tools)
})

for (const authorization of [`${FIRST_LINE},${TOKENS.tools}`, `${'a'.repeat(80)},${TOKENS.tools}`]) {
  test(`forward-auth behind Envoy: Authorization ${authorization.slice(0, 10)}...,<job token> is refused`, async t => {
    const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
    const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
    for (const path of ['/api/v4/projects/200/packages/cargo/api/v1/crates/new', '/api/v4/projects/200/packages/terraform/modules/net/aws/1.0.0/file']) {
      const answer = await send(auth, 'PUT', path, { authorization })
      // The words of the two readings name different credentials: refused as several.
      assert.equal(answer.status, 401, `${path}: ${answer.text}`)
      assert.equal(answer.json().code, 'CREDENTIAL_AMBIGUOUS', path)
    }
  })
}
