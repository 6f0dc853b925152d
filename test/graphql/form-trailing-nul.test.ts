// A form body ending in a NUL byte (some browsers' XHR appended one): Rack's #POST drops that
// one byte before it parses the form (rack/request.rb, "Fix for Safari Ajax postings"), so GitLab
// runs `variables[p]=acme/lib` and takes `private_token=<token>` without it. The gate read the
// NUL as part of the last value: it checked the project "acme/lib\0", which it did not find, and
// refused what GitLab would run; it asked GitLab about a token with a NUL in it, which no header
// can carry, and answered 503. Both are now read as Rack reads them; the identity stage already did.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}
const q = encodeURIComponent
const BY_VARIABLE = q('query($p: ID!) { project(fullPath: $p) { id } }')

test('a form body\'s last NUL is dropped before it is read, as Rack drops it', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  for (const type of ['application/x-www-form-urlencoded', undefined]) {
    const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type }
    const before = g.upstream.length
    // The variable GitLab runs with is acme/lib, which the token reaches: forwarded as sent.
    const own = `query=${BY_VARIABLE}&variables[p]=acme/lib\0`
    const allowed = await send(g.url, 'POST', '/api/graphql', { ...headers, 'private-token': 'glpat-lib-reader' }, own)
    assert.equal(allowed.status, 200, allowed.text)
    assert.equal(g.upstream.length, before + 1, `${type}: forwarded`)
    assert.equal(g.upstream.at(-1)!.body.toString('latin1'), own)
    // The token in the body is the one GitLab takes: decided, other/tools refused.
    const other = await send(g.url, 'POST', '/api/graphql', headers, `query=${BY_VARIABLE}&variables[p]=other/tools&private_token=glpat-lib-reader\0`)
    assert.equal(other.status, 200, other.text)
    assert.equal(other.json().errors?.[0]?.extensions?.code, 'GRAPHQL_PERMISSION_MISSING', other.text)
    assert.equal(other.json().errors[0].extensions.target, 'project other/tools')
    assert.equal(g.upstream.length, before + 1, `${type}: nothing more forwarded`)
  }
})
