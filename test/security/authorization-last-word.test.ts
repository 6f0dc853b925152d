// Finding: on routes that authenticate with `http_bearer_token` (Cargo, the Terraform module
// registry) GitLab takes the last word of Authorization whatever the scheme, so
// `Authorization: Foo Bar glcbt-...` is a job token there; the gate read the value after an
// unknown scheme as one opaque credential and forwarded the request unchecked.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

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
