// GitLab's GraphQL allowlist mutations through a real gate: the gate answers them from its own
// store (same validation, Maintainer check and audit as REST), refuses the ones it does not
// implement and every mix, and the upstream never sees any of them, whatever the request's
// shape: aliases, fragments, several operations, batches, form, multipart and
// application/graphql bodies, JSON-string variables, URL parameters, GET.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import { TOKENS, type TestGate } from '../helpers/gate.ts'
import { send, type RawResponse } from '../helpers/http.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const json = { 'content-type': 'application/json' }
const op = { ...json, 'private-token': ADMIN }
const gql = (query: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ query, ...extra })
const GROUPS: Record<string, { id: number, full_path: string }> = {
  acme: { id: 10, full_path: 'acme' },
  'acme/platform': { id: 11, full_path: 'acme/platform' },
  other: { id: 20, full_path: 'other' }
}

/** The fake GitLab answers group lookups by path (`GET /api/v4/groups/:path`), and echoes the rest. */
function answerGroups (req: IncomingMessage, res: ServerResponse): void {
  const m = /^(?:\/gitlab)?\/api\/v4\/groups\/([^/?]+)/.exec(req.url ?? '')
  const group = m === null || req.method !== 'GET' ? undefined : GROUPS[decodeURIComponent(m[1]!)]
  if (m !== null && req.method === 'GET') {
    res.writeHead(group === undefined ? 404 : 200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(group ?? { message: '404 Group Not Found' }))
    return
  }
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'fake' })
  res.end(JSON.stringify({ upstream: true, data: {} }))
}

async function gate (t: Parameters<typeof adminGate>[0], env: Record<string, string> = {}): Promise<TestGate> {
  const g = await adminGate(t, env)
  g.respond = answerGroups
  return g
}

/** Nothing but the gate's own group lookups reached the upstream: no GraphQL request at all. */
function upstreamSawNoGraphql (g: TestGate, what: string): void {
  const forwarded = g.seen.filter(s => !(s.method === 'GET' && /^(?:\/gitlab)?\/api\/v4\/groups\//.test(s.url)))
  assert.deepEqual(forwarded.map(s => `${s.method} ${s.url}`), [], `${what}: forwarded to GitLab`)
}

async function entries (g: TestGate): Promise<string[]> {
  return ((await g.store.get(200))?.entries ?? []).map(e => `${e.targetType}:${e.targetId}:${e.defaultPermissions ? 'default' : e.jobTokenPolicies.join('+')}`)
}

const SEEDED = ['project:100:read_packages', 'group:10:default']

/** Audit actions, oldest first. */
async function auditActions (g: TestGate): Promise<string[]> {
  return (await g.store.readAudit(200, { offset: 0, limit: 100 })).events.map(e => e.action).reverse()
}

function refusedWith (g: TestGate, res: RawResponse, code: string, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.text}`)
  assert.equal(res.json().code, code, `${what}: ${res.text}`)
  assert.equal(res.headers['x-upstream'], undefined)
  upstreamSawNoGraphql(g, what)
}

const REMOVE_APP = 'mutation { x: ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app", direction: INBOUND}) { errors ciJobTokenScope { inboundAllowlistCount } } }'

// ---------------------------------------------------------------------------------------------
// Answered from the gate's store

test('graphql allowlist: ciJobTokenScopeAddProject adds to the gate\'s store, audited, with GitLab\'s payload', async t => {
  const g = await gate(t)
  const res = await send(g.url, 'POST', '/api/graphql', op, gql(`mutation($input: CiJobTokenScopeAddProjectInput!) {
    ciJobTokenScopeAddProject(input: $input) {
      errors clientMutationId
      ciJobTokenScope { inboundAllowlistCount inboundAllowlist { nodes { id fullPath } } groupsAllowlist { count nodes { id fullPath } } }
    }
  }`, { variables: { input: { projectPath: 'acme/lib', targetProjectPath: 'acme/platform/web', clientMutationId: 'c1' } } }))
  assert.equal(res.status, 200, res.text)
  const payload = res.json().data.ciJobTokenScopeAddProject
  assert.deepEqual(payload.errors, [])
  assert.equal(payload.clientMutationId, 'c1')
  assert.equal(payload.ciJobTokenScope.inboundAllowlistCount, 3, 'the project itself, app and web')
  assert.deepEqual(payload.ciJobTokenScope.inboundAllowlist.nodes[2], { id: 'gid://gitlab/Project/600', fullPath: 'acme/platform/web' })
  assert.deepEqual(payload.ciJobTokenScope.groupsAllowlist.nodes, [{ id: 'gid://gitlab/Group/10', fullPath: null }], 'a target added by id has no stored path')
  assert.deepEqual(await entries(g), [...SEEDED, 'project:600:default'])
  assert.equal((await g.store.get(200))?.entries[2]?.targetPath, 'acme/platform/web')
  assert.deepEqual(await auditActions(g), ['add_project_to_allowlist'])
  upstreamSawNoGraphql(g, 'AddProject')

  const again = await send(g.url, 'POST', '/api/graphql', op, gql('mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/web"}) { errors ciJobTokenScope { inboundAllowlistCount } } }'))
  assert.deepEqual(again.json().data.ciJobTokenScopeAddProject, { errors: ['the target is already in the job token scope allowlist'], ciJobTokenScope: null })
  const unknown = await send(g.url, 'POST', '/api/graphql', op, gql('mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "nobody/nothing"}) { errors } }'))
  assert.deepEqual(unknown.json().data.ciJobTokenScopeAddProject.errors, ['targetProjectPath "nobody/nothing" is not a project the caller can see'])
  const outbound = await send(g.url, 'POST', '/api/graphql', op, gql('mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools", direction: OUTBOUND}) { errors } }'))
  assert.match(outbound.json().data.ciJobTokenScopeAddProject.errors[0], /outbound job token scope no longer exists/)
  assert.deepEqual(await entries(g), [...SEEDED, 'project:600:default'], 'refused mutations change nothing')
  assert.deepEqual(await auditActions(g), ['add_project_to_allowlist'])
  upstreamSawNoGraphql(g, 'AddProject refusals')
})

test('graphql allowlist: ciJobTokenScopeAddGroupOrProject with policies, as a Maintainer; the target as the user sees it', async t => {
  const g = await gate(t)
  const lead = { ...json, 'private-token': USERS.lead }
  const res = await send(g.url, 'POST', '/api/graphql', lead, gql(`mutation {
    ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "other", defaultPermissions: false, jobTokenPolicies: [READ_PACKAGES, ADMIN_RELEASES]}) {
      errors
      ciJobTokenScopeAllowlistEntry {
        sourceProject { id fullPath } direction defaultPermissions jobTokenPolicies autopopulated
        target { __typename ... on CiJobTokenAccessibleGroup { id fullPath path } }
        addedBy { id username }
      }
      ciJobTokenScope { groupsAllowlistCount }
    }
  }`))
  assert.equal(res.status, 200, res.text)
  const payload = res.json().data.ciJobTokenScopeAddGroupOrProject
  assert.deepEqual(payload.errors, [])
  assert.deepEqual(payload.ciJobTokenScopeAllowlistEntry, {
    sourceProject: { id: 'gid://gitlab/Project/200', fullPath: 'acme/lib' },
    direction: 'inbound',
    defaultPermissions: false,
    jobTokenPolicies: ['READ_PACKAGES', 'ADMIN_RELEASES'],
    autopopulated: false,
    target: { __typename: 'CiJobTokenAccessibleGroup', id: 'gid://gitlab/Group/20', fullPath: 'other', path: 'other' },
    addedBy: { id: 'gid://gitlab/User/44', username: 'lea' }
  })
  assert.equal(payload.ciJobTokenScope.groupsAllowlistCount, 2)
  const project = await send(g.url, 'POST', '/api/graphql', lead, gql('mutation { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "acme/platform/web"}) { errors ciJobTokenScopeAllowlistEntry { target { __typename } defaultPermissions } } }'))
  assert.deepEqual(project.json().data.ciJobTokenScopeAddGroupOrProject, { errors: [], ciJobTokenScopeAllowlistEntry: { target: { __typename: 'CiJobTokenAccessibleProject' }, defaultPermissions: true } })
  // other/tools exists, but this user cannot see it: GitLab's read check.
  const hidden = await send(g.url, 'POST', '/api/graphql', lead, gql('mutation { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "other/tools"}) { errors } }'))
  assert.deepEqual(hidden.json().data.ciJobTokenScopeAddGroupOrProject.errors, ['targetPath "other/tools" is not a group or project the caller can see'])
  assert.deepEqual(await entries(g), [...SEEDED, 'group:20:read_packages+admin_releases', 'project:600:default'])
  const events = (await g.store.readAudit(200, { offset: 0, limit: 10 })).events
  assert.deepEqual(events.map(e => e.action), ['add_project_to_allowlist', 'add_group_to_allowlist'], 'newest first')
  assert.deepEqual(events[1]!.actor, { kind: 'user', id: 44, username: 'lea' })
  upstreamSawNoGraphql(g, 'AddGroupOrProject')
})

test('graphql allowlist: ciJobTokenScopeUpdatePolicies validates as REST does and changes nothing when invalid', async t => {
  const g = await gate(t)
  const update = (policies: string, defaults = false): Promise<RawResponse> => send(g.url, 'POST', '/api/graphql', op,
    gql(`mutation { ciJobTokenScopeUpdatePolicies(input: {projectPath: "acme/lib", targetPath: "acme/platform/app", defaultPermissions: ${String(defaults)}, jobTokenPolicies: [${policies}]}) {
      errors ciJobTokenScopeAllowlistEntry { defaultPermissions jobTokenPolicies target { ... on CiJobTokenAccessibleProject { id fullPath } } } } }`))
  const ok = await update('READ_PACKAGES, READ_RELEASES')
  assert.equal(ok.status, 200, ok.text)
  assert.deepEqual(ok.json().data.ciJobTokenScopeUpdatePolicies, {
    errors: [],
    ciJobTokenScopeAllowlistEntry: { defaultPermissions: false, jobTokenPolicies: ['READ_PACKAGES', 'READ_RELEASES'], target: { id: 'gid://gitlab/Project/100', fullPath: null } }
  })
  assert.deepEqual(await entries(g), ['project:100:read_packages+read_releases', 'group:10:default'])
  for (const [policies, defaults, expected] of [
    ['READ_EVERYTHING', false, /^jobTokenPolicies\[0\] "read_everything" is not a known job token policy$/],
    ['READ_CONTAINERS', false, /^jobTokenPolicies\[0\] "read_containers" is deprecated/],
    ['READ_JOBS, READ_JOBS', false, /^jobTokenPolicies\[1\] lists "read_jobs" twice$/],
    ['READ_JOBS', true, /^jobTokenPolicies is given while defaultPermissions is true/]
  ] as const) {
    const bad = await update(policies, defaults)
    assert.equal(bad.status, 200, bad.text)
    const payload = bad.json().data.ciJobTokenScopeUpdatePolicies
    assert.equal(payload.ciJobTokenScopeAllowlistEntry, null)
    assert.equal(payload.errors.length, 1, bad.text)
    assert.match(payload.errors[0], expected)
  }
  const toGroup = await send(g.url, 'POST', '/api/graphql', op, gql('mutation { ciJobTokenScopeUpdatePolicies(input: {projectPath: "acme/lib", targetPath: "acme", defaultPermissions: false, jobTokenPolicies: [ADMIN_PACKAGES]}) { errors } }'))
  assert.deepEqual(toGroup.json().data.ciJobTokenScopeUpdatePolicies.errors, [])
  const absent = await send(g.url, 'POST', '/api/graphql', op, gql('mutation { ciJobTokenScopeUpdatePolicies(input: {projectPath: "acme/lib", targetPath: "other", defaultPermissions: true, jobTokenPolicies: []}) { errors } }'))
  assert.deepEqual(absent.json().data.ciJobTokenScopeUpdatePolicies.errors, ['group 20 is not in the job token scope allowlist'])
  assert.deepEqual(await entries(g), ['project:100:read_packages+read_releases', 'group:10:admin_packages'])
  assert.deepEqual(await auditActions(g), ['update_project_allowlist_entry', 'update_group_allowlist_entry'])
  upstreamSawNoGraphql(g, 'UpdatePolicies')
})

test('graphql allowlist: removals through an alias, a fragment on Mutation and an inline fragment', async t => {
  const g = await gate(t)
  const project = await send(g.url, 'POST', '/api/graphql', op, gql(REMOVE_APP))
  assert.equal(project.status, 200, project.text)
  assert.deepEqual(project.json().data.x, { errors: [], ciJobTokenScope: { inboundAllowlistCount: 1 } })
  const group = await send(g.url, 'POST', '/api/graphql', op, gql(`mutation Remove { ...R }
    fragment R on Mutation { gone: ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "acme"}) { errors ciJobTokenScope { groupsAllowlistCount } } }`))
  assert.equal(group.status, 200, group.text)
  assert.deepEqual(group.json().data.gone, { errors: [], ciJobTokenScope: { groupsAllowlistCount: 0 } })
  assert.deepEqual(await entries(g), [])
  const missing = await send(g.url, 'POST', '/api/graphql', op, gql('mutation { ... on Mutation { ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "acme"}) { errors } } }'))
  assert.deepEqual(missing.json().data.ciJobTokenScopeRemoveGroup.errors, ['group 10 is not in the job token scope allowlist'])
  assert.deepEqual(await auditActions(g), ['remove_project_allowlist_entry', 'remove_group_allowlist_entry'])
  upstreamSawNoGraphql(g, 'removals')
})

test('graphql allowlist: who may call — Developer, job token, anonymous and a user who cannot see the project are refused', async t => {
  const g = await gate(t)
  const dev = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer }, gql(REMOVE_APP))
  assert.equal(dev.status, 200)
  assert.equal(dev.json().errors[0].extensions.code, 'ADMIN_FORBIDDEN')
  assert.equal(dev.json().data.x, null)
  const job = await send(g.url, 'POST', '/api/graphql', { ...json, 'job-token': TOKENS.lib }, gql(REMOVE_APP))
  assert.equal(job.status, 403)
  assert.equal(job.json().code, 'ADMIN_JOB_TOKEN_REFUSED')
  const jobBearer = await send(g.url, 'POST', '/api/graphql', { ...json, authorization: `Bearer ${TOKENS.app}` }, gql(REMOVE_APP))
  assert.equal(jobBearer.status, 403)
  const none = await send(g.url, 'POST', '/api/graphql', json, gql(REMOVE_APP))
  assert.equal(none.status, 401)
  const elsewhere = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.maintainer }, gql('mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "other/tools", targetProjectPath: "acme/lib"}) { errors } }'))
  assert.equal(elsewhere.json().errors[0].extensions.code, 'ADMIN_PROJECT_NOT_FOUND')
  assert.deepEqual(await entries(g), SEEDED)
  assert.deepEqual(await auditActions(g), [])
  upstreamSawNoGraphql(g, 'refused callers')
})

// ---------------------------------------------------------------------------------------------
// Request shapes GitLab executes: the gate answers them

const REMOVE_VARS = 'mutation Remove($input: CiJobTokenScopeRemoveProjectInput!) { ciJobTokenScopeRemoveProject(input: $input) { errors } }'
const INPUT = { input: { projectPath: 'acme/lib', targetProjectPath: 'acme/platform/app', direction: 'INBOUND' } }
const multipart = (fields: Array<[string, string]>, boundary = 'gateBoundary'): string =>
  fields.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join('') + `--${boundary}--\r\n`

const answeredShapes: Array<[string, string, string, Record<string, string>, string]> = [
  ['application/graphql body', 'POST', '/api/graphql', { 'content-type': 'application/graphql' }, REMOVE_APP],
  ['variables as a JSON string', 'POST', '/api/graphql', json, gql(REMOVE_VARS, { variables: JSON.stringify(INPUT), operationName: 'Remove' })],
  ['a form body with JSON variables', 'POST', '/api/graphql', { 'content-type': 'application/x-www-form-urlencoded' },
    `query=${encodeURIComponent(REMOVE_VARS)}&variables=${encodeURIComponent(JSON.stringify(INPUT))}`],
  ['a form body with nested variables', 'POST', '/api/graphql', { 'content-type': 'application/x-www-form-urlencoded' },
    `query=${encodeURIComponent(REMOVE_VARS)}&variables[input][projectPath]=acme%2Flib&variables[input][targetProjectPath]=acme/platform/app&variables[input][direction]=INBOUND`],
  ['multipart with Apollo operations', 'POST', '/api/graphql', { 'content-type': 'multipart/form-data; boundary=gateBoundary' },
    multipart([['operations', gql(REMOVE_VARS, { variables: INPUT })], ['map', '{}']])],
  ['multipart query and variables fields', 'POST', '/api/graphql', { 'content-type': 'multipart/form-data; boundary=gateBoundary' },
    multipart([['query', REMOVE_VARS], ['variables', JSON.stringify(INPUT)]])],
  ['the URL\'s query over a GitLab body (Rails reads the URL first)', 'POST', `/api/graphql?query=${encodeURIComponent(REMOVE_APP)}`, json, gql('{ currentUser { id } }')],
  ['the .json format and extra slashes', 'POST', '//api//graphql.json/', json, gql(REMOVE_APP)],
  ['a raw newline inside a string, as graphql-ruby escapes it', 'POST', '/api/graphql', json,
    gql('mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app", clientMutationId: "a\nb"}) { errors clientMutationId } }')],
  ['no content type', 'POST', '/api/graphql', {}, gql(REMOVE_APP)],
  ['a form body without a Content-Type, letters percent-encoded (Rack reads it as a form)', 'POST', '/api/graphql', {},
    `query=${encodeURIComponent(REMOVE_APP).replace(/J/g, '%4A').replace(/R/g, '%52')}`],
  ['a JSON body that is a string, with the query in the URL', 'POST', `/api/graphql?query=${encodeURIComponent(REMOVE_APP)}`, json, '"not an object"']
]

for (const [name, method, path, headers, payload] of answeredShapes) {
  test(`graphql allowlist: ${name} is answered by the gate and removes the entry`, async t => {
    const g = await gate(t)
    const res = await send(g.url, method, path, { ...headers, 'private-token': ADMIN }, payload)
    assert.equal(res.status, 200, res.text)
    assert.equal(res.json().errors, undefined, res.text)
    assert.deepEqual(Object.values(res.json().data).map(p => (p as { errors: unknown }).errors), [[]])
    assert.deepEqual(await entries(g), ['group:10:default'])
    upstreamSawNoGraphql(g, name)
  })
}

test('graphql allowlist: under a relative URL root the rooted GraphQL path is the gate\'s', async t => {
  const g = await gate(t, { GATE_RELATIVE_URL_ROOT: '/gitlab' })
  const res = await send(g.url, 'POST', '//gitlab/api/graphql.json', op, gql('mutation { ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "acme"}) { errors } }'))
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(res.json().data.ciJobTokenScopeRemoveGroup.errors, [])
  assert.deepEqual(await entries(g), ['project:100:read_packages'])
  assert.deepEqual(g.seen.map(s => s.url), ['/gitlab/api/v4/groups/acme?with_projects=false'], 'only the group lookup, under the root')
  upstreamSawNoGraphql(g, 'rooted')
})

test('graphql allowlist: a gzip body GitLab cannot parse leaves the mutation in the URL the gate\'s', async t => {
  const g = await gate(t)
  const res = await send(g.url, 'POST', `/api/graphql?query=${encodeURIComponent(REMOVE_APP)}`, { ...op, 'content-encoding': 'gzip' }, gzipSync(gql('{ currentUser { id } }')))
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(await entries(g), ['group:10:default'])
  upstreamSawNoGraphql(g, 'compressed')
})

// ---------------------------------------------------------------------------------------------
// Refused, never forwarded

const refusedShapes: Array<[string, string, string, Record<string, string>, string | Buffer, string]> = [
  ['ciJobTokenScopeAutopopulateAllowlist', 'POST', '/api/graphql', json,
    gql('mutation { ciJobTokenScopeAutopopulateAllowlist(input: {projectPath: "acme/lib"}) { status errors } }'), 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE'],
  ['ciJobTokenScopeClearAllowlistAutopopulations under an alias', 'POST', '/api/graphql', json,
    gql('mutation { a: ciJobTokenScopeClearAllowlistAutopopulations(input: {projectPath: "acme/lib"}) { status } }'), 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE'],
  ['projectCiCdSettingsUpdate turning the scope off', 'POST', '/api/graphql', json,
    gql('mutation { projectCiCdSettingsUpdate(input: {fullPath: "acme/lib", inboundJobTokenScopeEnabled: false}) { errors } }'), 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE'],
  ['projectCiCdSettingsUpdate with the scope in variables', 'POST', '/api/graphql', json,
    gql('mutation($i: ProjectCiCdSettingsUpdateInput!) { s: projectCiCdSettingsUpdate(input: $i) { errors } }', { variables: { i: { fullPath: 'acme/lib', inboundJobTokenScopeEnabled: false } } }), 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE'],
  ['projectCiCdSettingsUpdate with the scope in a variable default', 'POST', '/api/graphql', json,
    gql('mutation($i: ProjectCiCdSettingsUpdateInput = {fullPath: "acme/lib", inboundJobTokenScopeEnabled: false}) { projectCiCdSettingsUpdate(input: $i) { errors } }'), 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE'],
  ['an allowlist mutation next to a GitLab mutation', 'POST', '/api/graphql', json,
    gql('mutation { a: ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/platform/app"}) { errors } b: createIssue(input: {projectPath: "acme/lib", title: "x"}) { errors } }'), 'GRAPHQL_MIXED_OPERATION'],
  ['two operations, operationName picking the GitLab one', 'POST', '/api/graphql', json,
    gql(`query Harmless { currentUser { id } } ${REMOVE_APP.replace('mutation {', 'mutation Evil {')}`, { operationName: 'Harmless' }), 'GRAPHQL_MIXED_OPERATION'],
  ['a batched JSON array', 'POST', '/api/graphql', json,
    JSON.stringify([{ query: '{ currentUser { id } }' }, { query: REMOVE_APP }]), 'GRAPHQL_MIXED_OPERATION'],
  ['a batch in the URL (_json[][query]) over a GitLab body', 'POST', `/api/graphql?_json[][query]=${encodeURIComponent(REMOVE_APP)}`, json,
    gql('{ currentUser { id } }'), 'GRAPHQL_MIXED_OPERATION'],
  ['a batch in a form body', 'POST', '/api/graphql', { 'content-type': 'application/x-www-form-urlencoded' },
    `_json[][query]=${encodeURIComponent(REMOVE_APP)}`, 'GRAPHQL_MIXED_OPERATION'],
  ['an Apollo batch in multipart', 'POST', '/api/graphql', { 'content-type': 'multipart/form-data; boundary=gateBoundary' },
    multipart([['operations', JSON.stringify([{ query: REMOVE_APP }])], ['map', '{}']]), 'GRAPHQL_MIXED_OPERATION'],
  ['a mutation over GET', 'GET', `/api/graphql?query=${encodeURIComponent(REMOVE_APP)}`, {}, '', 'GRAPHQL_GATE_FIELDS_OVER_GET'],
  ['a mutation over HEAD', 'HEAD', `/api/graphql.json?query=${encodeURIComponent(REMOVE_APP)}`, {}, '', 'GRAPHQL_GATE_FIELDS_OVER_GET'],
  ['a mutation in a GET body', 'GET', '/api/graphql', json, gql(REMOVE_APP), 'GRAPHQL_GATE_FIELDS_OVER_GET'],
  ['the gate\'s read over GET', 'GET', `/api/graphql?query=${encodeURIComponent('{ project(fullPath: "acme/lib") { jobTokenPermissions { packageRegistry { format } } } }')}`, {}, '', 'GRAPHQL_GATE_FIELDS_OVER_GET'],
  // Rack 3 reads `x` as `1;query=...` and runs the body's query: GitLab's or the gate's, unknown.
  ['a query Rack 2 finds after ";" in the URL over a GitLab body', 'POST', `/api/graphql?x=1;query=${encodeURIComponent(REMOVE_APP)}`, json,
    gql('{ currentUser { id } }'), 'GRAPHQL_AMBIGUOUS_REQUEST'],
  ['a URL and a body that both name allowlist mutations, differently', 'POST', `/api/graphql?x=1;query=${encodeURIComponent(REMOVE_APP)}`, json,
    gql(REMOVE_APP.replace('acme/platform/app', 'other/tools')), 'GRAPHQL_AMBIGUOUS_REQUEST'],
  ['a document the gate cannot parse', 'POST', '/api/graphql', json,
    gql('mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib" targetProjectPath: }) { errors }'), 'GRAPHQL_NOT_INSPECTABLE'],
  ['a JSON body with a comment', 'POST', '/api/graphql', json, `/* hi */ ${gql(REMOVE_APP)}`, 'GRAPHQL_NOT_INSPECTABLE'],
  ['a multipart delimiter only Rack 2 sees, hiding the mutation from a strict parser', 'POST', '/api/graphql', { 'content-type': 'multipart/form-data; boundary=gateBoundary' },
    `--gateBoundary\r\nContent-Disposition: form-data; name="query"\r\n\r\nmutation # --gateBoundary\r\n${REMOVE_APP.slice('mutation '.length)}\r\n--gateBoundary--\r\n`, 'GRAPHQL_AMBIGUOUS_REQUEST'],
  // graphql-ruby (2.2 and later) reads a comment on to LF, through CR: GitLab would run the
  // mutation, where graphql-js reads a block string.
  ['a mutation hidden from graphql-js by a comment GitLab reads on past a carriage return', 'POST', '/api/graphql', json,
    gql(`#\r{ currentUser(note: """\n${REMOVE_APP} #""") { id } }`), 'GRAPHQL_NOT_INSPECTABLE']
]

for (const [name, method, path, headers, payload, code] of refusedShapes) {
  test(`graphql allowlist: ${name} is refused (${code}) and never forwarded`, async t => {
    const g = await gate(t)
    const res = await send(g.url, method, path, { ...headers, 'private-token': ADMIN }, payload === '' ? undefined : payload)
    if (method === 'HEAD') {
      assert.equal(res.status, 400)
      upstreamSawNoGraphql(g, name)
    } else {
      refusedWith(g, res, code, name)
      if (code === 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE') assert.match(res.json().message, /POST \/api\/v4\/projects\/:id\/job_token_scope\/allowlist/)
    }
    assert.deepEqual(await entries(g), SEEDED)
    assert.equal((await g.store.get(200))?.inboundEnabled, true)
    assert.deepEqual(await auditActions(g), [])
  })
}

// ---------------------------------------------------------------------------------------------
// GitLab's own requests still pass through untouched

test('graphql allowlist: GitLab reads of its allowlist and other CI/CD settings pass through byte for byte', async t => {
  const g = await gate(t)
  const bodies = [
    gql('query { project(fullPath: "acme/lib") { ciJobTokenScope { inboundAllowlist { nodes { fullPath } } } } }'),
    gql('mutation { projectCiCdSettingsUpdate(input: {fullPath: "acme/lib", keepLatestArtifact: true}) { errors } }'),
    gql('mutation($i: ProjectCiCdSettingsUpdateInput!) { projectCiCdSettingsUpdate(input: $i) { errors } }', { variables: { i: { fullPath: 'acme/lib', keepLatestArtifact: true } } }),
    gql('mutation { createIssue(input: {projectPath: "acme/lib", title: "about ciJobTokenScopeRemoveProject"}) { errors } }')
  ]
  for (const payload of bodies) {
    const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.maintainer }, payload)
    assert.equal(res.status, 200, res.text)
    assert.equal(res.headers['x-upstream'], 'fake', payload)
  }
  const get = await send(g.url, 'GET', `/api/graphql?query=${encodeURIComponent('{ currentUser { id } }')}`, { 'private-token': USERS.maintainer })
  assert.equal(get.headers['x-upstream'], 'fake')
  assert.deepEqual(g.seen.map(s => s.sha256), [...bodies.map(b => createHash('sha256').update(b).digest('hex')), createHash('sha256').update('').digest('hex')])
  assert.deepEqual(await entries(g), SEEDED)
})
