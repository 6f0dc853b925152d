// Regression: a GraphQL request with several readings (an untyped POST body, read as a form and
// as nothing; a body of a type GitLab may not parse; Rack 2's `;` in the URL; a multipart body
// read with and without Apollo's `operations` applied) was answered by the gate whenever exactly
// one reading named its fields, whatever the others ran: with the URL's
// `ciJobTokenScopeRemoveProject` under an untyped form body `_json[][query]=...`, the gate
// removed the entry, where GitLab's stack (Rack::MethodOverride reads that body) runs the
// body's batch. The gate now acts only where every reading that runs a document is the same
// one; any other mix is refused, 400 GRAPHQL_AMBIGUOUS_REQUEST, nothing changed or forwarded.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'

const q = encodeURIComponent
const REMOVE_APP = 'mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app"}) { errors } }'
const REMOVE_GROUP = 'mutation { ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "acme"}) { errors } }'
const READ = '{ project(fullPath: "acme/lib") { jobTokenPermissions { packageRegistry { format } } } }'
const GITLAB = '{ currentUser { id } }'
const SEEDED = ['project:100:read_packages', 'group:10:default']
const json = { 'content-type': 'application/json' }

/** The fake GitLab answers the acme group by path, and echoes the rest. */
function answer (req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && /^\/api\/v4\/groups\/acme\?/.test(req.url ?? '')) {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: 10, full_path: 'acme' }))
    return
  }
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'fake' })
  res.end(JSON.stringify({ upstream: true, data: {} }))
}

async function entries (g: TestGate): Promise<string[]> {
  return ((await g.store.get(200))?.entries ?? []).map(e => `${e.targetType}:${e.targetId}:${e.defaultPermissions ? 'default' : e.jobTokenPolicies.join('+')}`)
}

function graphqlSeen (g: TestGate): string[] {
  return g.seen.filter(s => s.url.includes('graphql')).map(s => `${s.method} ${s.url}`)
}

// [what, path, headers, body]: the readings disagree, and one of them names the gate's fields.
const mixed: Array<[string, string, Record<string, string>, string]> = [
  // GitLab's stack runs the body's batch (Rack::MethodOverride reads the untyped form).
  ['the URL\'s allowlist mutation under an untyped form body holding a batch', `/api/graphql?query=${q(REMOVE_APP)}`, {}, `_json[][query]=${q(GITLAB)}`],
  ['the URL\'s gate read under an untyped form body holding a batch', `/api/graphql?query=${q(READ)}`, {}, `_json[][query]=${q(GITLAB)}`],
  ['the URL\'s allowlist mutation under a text/plain JSON batch', `/api/graphql?query=${q(REMOVE_APP)}`, { 'content-type': 'text/plain' }, JSON.stringify([{ query: GITLAB }])],
  // Rack 3 reads `x` as `1;query=...` and runs the body's query.
  ['an allowlist mutation only Rack 2 finds after ";" over a GitLab body', `/api/graphql?x=1;query=${q(REMOVE_APP)}`, json, JSON.stringify({ query: GITLAB })],
  ['allowlist mutations with other arguments in each reading', `/api/graphql?x=1;query=${q(REMOVE_APP)}`, json, JSON.stringify({ query: REMOVE_GROUP })],
  ['another operation selected in each reading', `/api/graphql?x=1;operationName=B`, json,
    JSON.stringify({ query: `${REMOVE_APP.replace('mutation {', 'mutation A {')} ${REMOVE_GROUP.replace('mutation {', 'mutation B {')}`, operationName: 'A' })],
  // GitLab's upload middleware writes `operations` over the query part: it runs GitLab's query.
  ['a query part holding an allowlist mutation under Apollo\'s `operations`', '/api/graphql', { 'content-type': 'multipart/form-data; boundary=BB' },
    [['query', REMOVE_APP], ['operations', JSON.stringify({ query: GITLAB })], ['map', '{}']].map(([n, v]) => `--BB\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`).join('') + '--BB--\r\n'],
  ['an allowlist mutation in one reading, a scope setting in the other', `/api/graphql?x=1;query=${q(REMOVE_APP)}`, json,
    JSON.stringify({ query: 'mutation { projectCiCdSettingsUpdate(input: {fullPath: "acme/lib", inboundJobTokenScopeEnabled: false}) { errors } }' })]
]

for (const [what, path, headers, body] of mixed) {
  test(`GraphQL readings: ${what} is refused as ambiguous, nothing changed or forwarded`, async t => {
    const g = await adminGate(t)
    g.respond = answer
    const res = await send(g.url, 'POST', path, { ...headers, 'private-token': ADMIN }, body)
    assert.equal(res.status, 400, `${what}: ${res.text}`)
    assert.equal(res.json().code, 'GRAPHQL_AMBIGUOUS_REQUEST', res.text)
    assert.deepEqual(await entries(g), SEEDED)
    assert.equal((await g.store.get(200))?.inboundEnabled, true)
    assert.deepEqual(graphqlSeen(g), [], 'not forwarded')
  })
}

// Readings under which GitLab runs nothing (no document) leave the one that runs the gate's.
const agreed: Array<[string, string, Record<string, string>, string]> = [
  ['an untyped form body (nothing, to a stack without Rack::MethodOverride)', '/api/graphql', {}, `query=${q(REMOVE_APP)}`],
  ['a text/plain JSON body (nothing, where GitLab does not parse it)', '/api/graphql', { 'content-type': 'text/plain' }, JSON.stringify({ query: REMOVE_APP })],
  ['the URL\'s mutation over a text/plain JSON body the URL overrides', `/api/graphql?query=${q(REMOVE_APP)}`, { 'content-type': 'text/plain' }, JSON.stringify({ query: GITLAB })]
]

for (const [what, path, headers, body] of agreed) {
  test(`GraphQL readings: ${what} is answered by the gate`, async t => {
    const g = await adminGate(t)
    g.respond = answer
    const res = await send(g.url, 'POST', path, { ...headers, 'private-token': ADMIN }, body)
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(res.json().data.ciJobTokenScopeRemoveProject.errors, [], res.text)
    assert.deepEqual(await entries(g), ['group:10:default'])
    assert.deepEqual(graphqlSeen(g), [], 'not forwarded')
  })
}
