// Which paths outside the API run GitLab's GraphQL or its model registry's web delete, against
// Rails' router itself (test/helpers/rails-routes.rb): the paths spelt every way a client may,
// above all in Rails' optional `(.:format)`, which is matched on the path as sent, so that an
// escaped dot is a format (`/api/graphql.%2E` runs GraphQL). Wherever Rails runs GraphQL, the
// gate must take the request as GraphQL: forward-auth refuses to decide it (the gate answers
// GraphQL itself), and the proxy never hands GitLab a path that Rails runs as GraphQL. Wherever
// Rails runs the web delete, the gate reads it as that project's model delete.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { canonicalize } from '../../src/routing/canonical.ts'
import { webModelRegistryDelete } from '../../src/routing/package-fallback.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { railsRoutes, railsUnavailable } from '../helpers/rails-routes.ts'
import { requireTool } from '../helpers/require-tool.ts'

/** Pieces of a path's tail: escaped and raw dots, slashes and other characters Rails' format takes. */
const PIECES = ['.', '.', '%2E', '%2e', 'json', 'j', '%2F', '%2f', '/', '%3F', '%25', '%20', '%23', '%3B', ';', '%2D', '-', '~', '%7E', '_', '%5F', '%2C']

/** Tails after a path: a fixed list, then generated ones (fixed seed: the same every run). */
function tails (seed: number, count: number): string[] {
  const fixed = ['', '/', '.json', '.%2E', '.%2e', '.%2E%2E', '.%2Ejson', '.j%2Es', '.%2F', '.%3F', '.', '..', '%2E', '%2Ejson', '.json/', '.%20', '.%25', '//']
  const generated = fc.sample(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 5 }).map(p => p.join('')), { numRuns: count, seed })
  return [...new Set([...fixed, ...generated])]
}

const GRAPHQL_BODY = JSON.stringify({ query: 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app"}) { errors } }' })
const GRAPHQL_ACTIONS = new Set(['graphql#execute', 'glql/base#execute'])

test('every spelling Rails runs as GraphQL is GraphQL to the gate: forward-auth refuses to decide it, the proxy never forwards it so', async (t) => {
  if (!requireTool(t, railsUnavailable())) return
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const requests: Array<[string, string]> = []
  for (const base of ['/api/graphql', '/api/glql']) {
    for (const tail of tails(base.length, 150)) requests.push(['POST', base + tail])
  }
  const routes = railsRoutes(requests)
  let graphql = 0
  const forwarded: Array<[string, string]> = []
  for (const [i, [method, path]] of requests.entries()) {
    const what = `${method} ${path} (Rails: ${routes[i] ?? 'no route'})`
    const headers = { 'content-type': 'application/json', 'private-token': 'glpat-someone' }
    const decided = await send(auth, method, path, headers, GRAPHQL_BODY)
    const before = g.seen.length
    await send(g.url, method, path, headers, GRAPHQL_BODY)
    for (const seen of g.seen.slice(before)) forwarded.push([seen.method, seen.url])
    if (routes[i] === null || !GRAPHQL_ACTIONS.has(routes[i]!)) continue
    graphql++
    assert.notEqual(decided.status, 200, `forward-auth let ${what} through undecided: ${decided.text}`)
    if (decided.status === 403) assert.equal(decided.json().code, 'FORWARD_AUTH_GATE_ENDPOINT', `${what}: ${decided.text}`)
  }
  // The proxy forwards the canonical path: none of them may be one Rails runs as GraphQL.
  const forwardedRoutes = railsRoutes(forwarded)
  const reachedGraphql = forwarded.filter((_, i) => forwardedRoutes[i] !== null && GRAPHQL_ACTIONS.has(forwardedRoutes[i]!))
  assert.deepEqual(reachedGraphql, [], 'the proxy handed GitLab GraphQL it did not read')
  assert.ok(graphql >= 40, `only ${graphql} of the spellings run GraphQL in Rails: the test no longer probes the format`)
  assert.ok(forwarded.length > 0, 'some spellings are no GraphQL and are forwarded')
})

test('every spelling Rails runs as the model registry\'s web delete is that project\'s model delete to the gate', (t) => {
  if (!requireTool(t, railsUnavailable())) return
  const requests: Array<[string, string]> = []
  for (const project of ['acme/lib', 'acme/sub.group/lib', 'acme//lib', 'acme/lib%2Dx', 'o/org/acme/lib']) {
    for (const tail of tails(project.length, 60)) requests.push(['DELETE', `/${project}/-/ml/models/7${tail}`])
  }
  const routes = railsRoutes(requests)
  let deletes = 0
  for (const [i, [method, path]] of requests.entries()) {
    if (routes[i] !== 'ml/models#destroy') continue
    deletes++
    const canonical = canonicalize(method, path)
    if (canonical.kind === 'rejected') continue // refused before any decision
    assert.equal(canonical.kind, 'other', path)
    const matches = webModelRegistryDelete(canonical.method, canonical.path, '')
    assert.ok(matches !== null && matches.length > 0, `${method} ${path} runs the web delete in Rails, the gate reads no model delete`)
  }
  assert.ok(deletes >= 50, `only ${deletes} of the spellings run the web delete in Rails`)
})
