// Finding: a body sent without a Content-Type was read only as a POST's form, and a PUT, PATCH
// or DELETE body not at all. Grape parses such a body with the API's default format, and
// GitLab's NuGet, PyPI, Composer, Cargo, Terraform state and MLflow APIs declare
// `default_format :json`: `{"job_token": "..."}` sent without a type is a job token GitLab
// reads there, while the gate saw a request without one and forwarded it. A body without a type
// that starts as a JSON object is now read as JSON (a POST's whole, others as they stream);
// anything else still streams untouched.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { TOKENS, startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const NUGET_DELETE = '/api/v4/projects/200/packages/nuget/pkg/1.0.0'
const COMPOSER_PUBLISH = '/api/v4/projects/200/packages/composer'
const GENERIC_PUT = '/api/v4/projects/100/packages/generic/tool/1.0.0/tool.bin'
const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex')

test('a job token in a JSON body without a Content-Type is read as GitLab\'s JSON APIs read it: never forwarded unseen', async t => {
  const g = await startTestGate(t)
  const token = JSON.stringify({ job_token: TOKENS.app })
  // A POST: read whole, the job token identifies the request (app may not publish to lib).
  const post = await send(g.url, 'POST', COMPOSER_PUBLISH, {}, JSON.stringify({ job_token: TOKENS.app, tag: 'v1.0.0' }))
  assert.equal(post.status, 403, post.text)
  assert.equal(post.json().code, 'MISSING_POLICIES')
  // PUT, PATCH, DELETE: streamed; a job token there cannot identify the request and is refused.
  for (const [method, body] of [['DELETE', token], ['DELETE', `  \r\n\t${token}`], ['PUT', token], ['PATCH', token]] as const) {
    const res = await send(g.url, method, NUGET_DELETE, {}, body)
    assert.equal(res.status, 401, `${method} ${JSON.stringify(body)}: ${res.text}`)
    assert.equal(res.json().code, 'JSON_CREDENTIAL_NOT_ALLOWED')
  }
  // Ruby's parser skips comments: a body that starts with one is refused, not passed unread, where
  // GitLab reads credentials from it (the Terraform state API; NuGet's routes declare
  // authenticate_with and read none from a body, test/security/untyped-upload-not-json.test.ts).
  const comment = await send(g.url, 'DELETE', '/api/v4/projects/200/terraform/state/prod/lock', {}, `/* c */${token}`)
  assert.equal(comment.status, 400, comment.text)
  assert.equal(comment.json().code, 'BODY_NOT_PARSEABLE')
  // Beside the job token of a header: another one in the body is ambiguous.
  const beside = await send(g.url, 'DELETE', NUGET_DELETE, { 'job-token': TOKENS.lib }, JSON.stringify({ job_token: TOKENS.tools }))
  assert.equal(beside.status, 401, beside.text)
  assert.equal(beside.json().code, 'CREDENTIAL_AMBIGUOUS')
  assert.equal(g.seen.filter(s => s.url.includes('/packages/')).length, 0, 'nothing reached the upstream')
})

test('a body without a Content-Type that is no JSON object streams on untouched, and JSON without a credential passes', async t => {
  const g = await startTestGate(t)
  const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(200 * 1024, 0x7b)])
  for (const body of [png, Buffer.from('[{"job_token":"x"}]'), Buffer.from('#!/bin/sh\necho {"job_token"}\n')]) {
    const res = await send(g.url, 'PUT', GENERIC_PUT, { 'job-token': TOKENS.app }, body)
    assert.equal(res.status, 200, res.text)
    assert.equal(g.seen.at(-1)?.sha256, sha256(body), 'forwarded byte for byte')
  }
  const json = Buffer.from(JSON.stringify({ name: 'tool', files: ['a', 'b'] }))
  const res = await send(g.url, 'PUT', GENERIC_PUT, { 'job-token': TOKENS.app }, json)
  assert.equal(res.status, 200, res.text)
  assert.equal(g.seen.at(-1)?.sha256, sha256(json))
  // Over the inspection limit: still read as it streams.
  const late = Buffer.from(JSON.stringify({ data: 'x'.repeat(200 * 1024), job_token: TOKENS.tools }))
  const refused = await send(g.url, 'PUT', GENERIC_PUT, { 'job-token': TOKENS.app }, late)
  assert.equal(refused.status, 401, refused.text)
  assert.equal(refused.json().code, 'CREDENTIAL_AMBIGUOUS')
  assert.ok(g.seen.every(s => s.sha256 !== sha256(late)), 'the upstream never had it whole')
})
