// Finding: a GraphQL request whose body is JSON nested thousands of levels deep (10 KB is
// enough) was a 500 GATE_INTERNAL_ERROR: JSON.parse reads any depth, but what reads the parsed
// readings afterwards recurses (JSON.stringify keys readings apart), and the stack ran out. It
// failed closed, but bad input gets a clear answer, not an internal error. Such a body is now
// refused as unreadable (400, naming the depth) by the configuration API's classifier and by
// the enforcement of fine-grained tokens alike, and a buffered JSON body on any route keeps the
// streamed guard's bound (512 levels, 400 JSON_TOO_DEEP), as docs/identity.md says it does.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adminGate } from '../helpers/admin-gate.ts'
import { postGraphql, startGraphqlGate } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'
import { bodyCredentials } from '../../src/identity/body-scan.ts'
import { nestsDeeperThan, scanJson } from '../../src/identity/json-guard.ts'
import { IdentityError } from '../../src/identity/types.ts'

const nested = (n: number): string => '['.repeat(n) + ']'.repeat(n)
const read = 'query A { project(fullPath: "acme/lib") { jobTokenPermissions { jobTokenPoliciesEnabled } } }'
const TYPES = ['application/json', 'application/vnd.git-lfs+json', 'text/plain', 'application/x-www-form-urlencoded']

test('nesting is counted outside strings, escaped quotes included', () => {
  assert.equal(nestsDeeperThan(nested(512)), false)
  assert.equal(nestsDeeperThan(nested(513)), true)
  assert.equal(nestsDeeperThan(JSON.stringify({ a: '['.repeat(5000), b: '\\"[[[' })), false)
  assert.equal(nestsDeeperThan(JSON.stringify([{ a: '"]]' }, '\\', [[]]]), 3), false)
  assert.equal(nestsDeeperThan(JSON.stringify([{ a: '"]]' }, '\\', [[[]]]]), 3), true)
  assert.equal(nestsDeeperThan('{"a":' + '{"a":'.repeat(512) + '1' + '}'.repeat(513), 512), true)
  assert.equal(nestsDeeperThan(nested(3), 2), true)
})

test('a buffered JSON body is bounded as the streamed guard bounds it', () => {
  const body = (n: number): Buffer => Buffer.from(`{"a":${nested(n - 1)}}`)
  assert.deepEqual(bodyCredentials('json', body(512)), [])
  assert.deepEqual(scanJson(body(512)), [])
  for (const read of [() => bodyCredentials('json', body(513)), () => scanJson(body(513))]) {
    assert.throws(read, (err: unknown) => err instanceof IdentityError && err.code === 'JSON_TOO_DEEP')
  }
})

test('configuration API: a GraphQL body nested thousands deep is refused, naming why, whatever its type', async t => {
  const g = await adminGate(t)
  const headers = { 'private-token': 'glpat-maintainer-of-lib' }
  for (const contentType of TYPES) {
    for (const body of [
      JSON.stringify({ query: read }).slice(0, -1) + `,"variables":${nested(5000)}}`,
      JSON.stringify({ query: read }).slice(0, -1) + `,"x":{"y":${nested(600)}}}`
    ]) {
      const res = await send(g.url, 'POST', '/api/graphql', { ...headers, 'content-type': contentType }, body)
      assert.equal(res.status, 400, `${contentType}: ${res.text.slice(0, 300)}`)
      assert.match(res.json().message, /nested deeper than 512 levels/)
    }
  }
  // 512 levels are read: the document is the gate's, answered.
  const flat = await send(g.url, 'POST', '/api/graphql', { ...headers, 'content-type': 'application/json' }, JSON.stringify({ query: read }).slice(0, -1) + `,"x":${nested(511)}}`)
  assert.equal(flat.status, 200, flat.text.slice(0, 300))
  assert.equal(flat.json().data.project.jobTokenPermissions.jobTokenPoliciesEnabled, null)
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('fine-grained tokens: a GraphQL body nested thousands deep is refused before GitLab, whatever its type', async t => {
  const g = await startGraphqlGate(t, { tokens: { 'glpat-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] } } })
  const body = JSON.stringify({ query: '{ project(fullPath: "other/tools") { id } }' }).slice(0, -1) + `,"variables":${nested(5000)}}`
  for (const contentType of TYPES) {
    const res = await postGraphql(g.url, Buffer.from(body), { 'content-type': contentType, 'private-token': 'glpat-reader' })
    assert.equal(res.status, 400, `${contentType}: ${JSON.stringify(res.body).slice(0, 300)}`)
    assert.match(res.body.message, /nested deeper than 512 levels/)
  }
  assert.equal(g.upstream.length, 0, 'nothing reached GitLab')
  const after = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }' }, { 'private-token': 'glpat-reader' })
  assert.deepEqual(after.body, { data: { upstream: true } })
})
