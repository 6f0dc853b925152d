// The configuration API over GraphQL: gate-only operations answered by the gate, GitLab's
// passed through byte for byte, mixes refused with 400.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { classifyGraphql, escapeSingleQuotedNewlines, rubyLexDifference } from '../../src/admin/graphql.ts'
import { ADMIN, USERS, adminGate } from '../helpers/admin-gate.ts'

const gql = (query: string, variables?: unknown): string => JSON.stringify({ query, ...(variables === undefined ? {} : { variables }) })
const json = { 'content-type': 'application/json' }

const READ = 'query { project(fullPath: "acme/lib") { jobTokenPermissions { packageRegistry { format read write delete configured } } } }'
const UPDATE = `mutation($input: UpdateJobTokenPermissionsInput!) {
  updateJobTokenPermissions(input: $input) { errors clientMutationId jobTokenPermissions { packageRegistry { format write delete } } }
}`

test('graphql: classification', () => {
  const cls = (body: string): string => {
    const c = classifyGraphql(Buffer.from(body))
    return c.kind === 'refused' && c.code === 'GRAPHQL_MIXED_OPERATION' ? 'mixed' : c.kind
  }
  assert.equal(cls(gql('{ currentUser { id } }')), 'gitlab')
  assert.equal(cls('not json'), 'gitlab')
  assert.equal(cls(gql('{ broken')), 'gitlab')
  assert.equal(cls(gql(READ)), 'gate')
  assert.equal(cls(gql('{ project(fullPath: "a/b") { name jobTokenPermissions { packageRegistry { format } } } }')), 'mixed')
  assert.equal(cls(gql('{ currentUser { id } project(fullPath: "a/b") { jobTokenPermissions { packageRegistry { format } } } }')), 'mixed')
  assert.equal(cls(JSON.stringify([{ query: READ }])), 'mixed')
  assert.equal(cls(JSON.stringify([{ query: '{ currentUser { id } }' }])), 'gitlab')
})

test('graphql: documents go through graphql-ruby\'s escape_single_quoted_newlines, quirks included', () => {
  assert.equal(escapeSingleQuotedNewlines('{ a(s: "x\ny") }\n'), '{ a(s: "x\\ny") }\n', 'inside a string: escaped; outside: kept')
  assert.equal(escapeSingleQuotedNewlines('{ a(s: """x\ny""") }'), '{ a(s: """x\ny""") }', 'block strings are left alone')
  assert.equal(escapeSingleQuotedNewlines('{ a(s: "q\\"\n") }'), '{ a(s: "q\\"\\n") }', 'a backslash before a quote is read as an escaped quote, as Ruby\'s scanner does')
  assert.equal(escapeSingleQuotedNewlines('"a\r\nb"'), '"a\\r\\nb"')
})

test('graphql: where graphql-ruby would cut a document into other tokens is found, with its line', () => {
  const line = (query: string): number | null => rubyLexDifference(query)?.line ?? null
  // graphql-ruby (2.2 and later) ends a comment at LF only; graphql-js at CR too.
  assert.equal(line('{ a } # no carriage return\n{ b }'), null)
  assert.equal(line('{ a # CRLF ends it for both\r\n b }'), null)
  assert.equal(line('{ a # only white space after the CR\r  \t,\n b }'), null)
  assert.equal(line('{ a # only comments after the CR\r# more\r\n b }'), null)
  assert.equal(line('{ a(x: """ # in a block string\r b """) }'), null, 'no comment: a block string')
  assert.equal(line('{ a(x: "#") # CR then code\r b\n }'), 1)
  assert.equal(line('{\n a\n # no LF after it: GitLab reads on to the end\r b }'), 3)
  assert.equal(line('{ a(x: 1e) # a lexer error first is the parser\'s to report\r b }'), null)
  // Block strings: an escaped triple quote, or a quote right after the closing three.
  assert.equal(line('{ a(x: """plain "quoted", ""twice"" and \\ backslash\n""") }'), null)
  assert.equal(line('{ a(x:\n """ends \\""" here? """) }'), 2)
  assert.equal(line('{ a(x: ["""a""""" ]) }'), 1)
  assert.match(rubyLexDifference('{ a(x: """\\""" """) }')?.what ?? '', /holds \\"""/)
  assert.match(rubyLexDifference('{ a(x: ["""a""""" ]) }')?.what ?? '', /followed at once by a quote/)
})

test('graphql: requests are read as Rails reads them (URL over body, Rack\'s nested names, batches)', () => {
  const REMOVE = 'mutation { ciJobTokenScopeRemoveGroup(input: {projectPath: "a/b", targetGroupPath: "c"}) { errors } }'
  const cls = (body: string, request: Parameters<typeof classifyGraphql>[1]): string => {
    const c = classifyGraphql(Buffer.from(body), request)
    return c.kind === 'refused' ? c.code : c.kind
  }
  const form = { contentType: 'application/x-www-form-urlencoded' }
  assert.equal(cls(`query=${encodeURIComponent(REMOVE)}`, form), 'gate')
  assert.equal(cls(`query[]=${encodeURIComponent(REMOVE)}`, form), 'gitlab', 'an array is no query for GitLab (permit drops it)')
  assert.equal(cls(`_json[][query]=${encodeURIComponent(REMOVE)}&_json[][variables]=x`, form), 'GRAPHQL_MIXED_OPERATION', 'a batch')
  assert.equal(cls(`query=${encodeURIComponent(REMOVE)}&query=${encodeURIComponent('{ currentUser { id } }')}`, form), 'gitlab', 'the last value wins, as in Rack')
  assert.equal(cls(`query=x&query[a]=${encodeURIComponent(REMOVE)}`, form), 'GRAPHQL_NOT_INSPECTABLE', 'Rack refuses the type conflict; the gate does not guess')
  assert.equal(cls(gql('{ currentUser { id } }'), { query: `operationName=A&query=${encodeURIComponent(REMOVE)}` }), 'gate', 'the URL\'s query overrides the body\'s')
  assert.equal(cls(gql(REMOVE), { query: `query=${encodeURIComponent('{ currentUser { id } }')}` }), 'gitlab', 'the URL\'s harmless query is what GitLab runs')
  assert.equal(cls(gql(REMOVE), { method: 'GET' }), 'GRAPHQL_GATE_FIELDS_OVER_GET')
  assert.equal(cls('', { method: 'GET', query: `query=${encodeURIComponent('{ currentUser { id } }')}` }), 'gitlab')
  assert.equal(cls(JSON.stringify({ _json: [{ query: REMOVE }] }), {}), 'GRAPHQL_MIXED_OPERATION', '`_json` inside a JSON object is a batch too')
  assert.equal(cls(gql(REMOVE), { bodyReadable: false }), 'gitlab', 'an unread (compressed) body is not GitLab\'s to run either')
})

test('graphql: the gate answers jobTokenPermissions and updateJobTokenPermissions; nothing reaches GitLab', async t => {
  const g = await adminGate(t)
  const read = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.maintainer }, gql(READ))
  assert.equal(read.status, 200, read.text)
  const registry = read.json().data.project.jobTokenPermissions.packageRegistry
  assert.deepEqual(registry.find((f: { format: string }) => f.format === 'maven'), { format: 'maven', read: true, write: 'JOB_TOKEN_AND_MAINTAINER', delete: 'JOB_TOKEN_AND_MAINTAINER', configured: false })

  const update = await send(g.url, 'POST', '/api/graphql', { ...json, authorization: `Bearer ${ADMIN}` },
    gql(UPDATE, { input: { projectPath: 'acme/lib', clientMutationId: 'm1', packageRegistry: [{ format: 'maven', write: 'MAINTAINER' }] } }))
  assert.equal(update.status, 200, update.text)
  const payload = update.json().data.updateJobTokenPermissions
  assert.deepEqual(payload.errors, [])
  assert.equal(payload.clientMutationId, 'm1')
  assert.deepEqual(payload.jobTokenPermissions.packageRegistry.find((f: { format: string }) => f.format === 'maven'), { format: 'maven', write: 'MAINTAINER', delete: 'MAINTAINER' })
  assert.deepEqual((await g.store.get(200))?.packageRules, { maven: { write: 'maintainer' } })
  assert.equal((await g.store.readAudit(200, { offset: 0, limit: 5 })).total, 1)

  const invalid = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN },
    gql(UPDATE, { input: { projectPath: 'acme/lib', packageRegistry: [{ format: 'maven', delete: 'JOB_TOKEN_AND_MAINTAINER' }, { format: 'swift', read: true }] } }))
  const errors = invalid.json().data.updateJobTokenPermissions.errors as string[]
  assert.equal(errors.length, 2, invalid.text)
  assert.ok(errors.some(e => e.startsWith('packageRegistry.swift') && e.includes('not a known package format')))
  assert.ok(errors.some(e => e.startsWith('packageRegistry.maven.delete') && e.includes('may not write')))
  assert.deepEqual((await g.store.get(200))?.packageRules, { maven: { write: 'maintainer' } }, 'a refused mutation changes nothing')

  const dev = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.developer },
    gql(UPDATE, { input: { projectPath: 'acme/lib', packageRegistry: [{ format: 'npm', write: 'MAINTAINER' }] } }))
  assert.equal(dev.json().errors[0].extensions.code, 'ADMIN_FORBIDDEN')
  assert.equal(dev.json().data.updateJobTokenPermissions, null)
  const job = await send(g.url, 'POST', '/api/graphql', { ...json, 'job-token': TOKENS.lib }, gql(READ))
  assert.equal(job.status, 403)
  assert.equal(job.json().code, 'ADMIN_JOB_TOKEN_REFUSED')
  const badType = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN }, gql('{ project(fullPath: 5) { jobTokenPermissions { packageRegistry { format } } } }'.replace('5', '["x"]')))
  assert.equal(badType.status, 200)
  assert.ok(badType.json().errors.length > 0, 'validation errors in GraphQL\'s shape')
  assert.equal(g.seen.length, 0)
})

test('graphql: other requests pass through untouched, byte for byte', async t => {
  const g = await adminGate(t)
  const body = gql('query { currentUser { id username } }') + '\n  '
  const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': USERS.maintainer }, body)
  assert.equal(res.status, 200)
  assert.equal(res.json().upstream, true)
  assert.equal(g.seen.length, 1)
  assert.equal(g.seen[0]!.url, '/api/graphql')
  assert.equal(g.seen[0]!.sha256, createHash('sha256').update(body).digest('hex'))
  assert.equal(g.seen[0]!.headers['content-length'], String(Buffer.byteLength(body)))
})

test('graphql: a request mixing the gate\'s fields with GitLab\'s is 400 and explains why', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN },
    gql('{ currentUser { id } project(fullPath: "acme/lib") { jobTokenPermissions { packageRegistry { format } } } }'))
  assert.equal(res.status, 400)
  assert.equal(res.json().code, 'GRAPHQL_MIXED_OPERATION')
  assert.match(res.json().message, /mixes the gate's fields .* with GitLab fields; send them as separate requests/)
  assert.match(res.json().message, /currentUser/)
  assert.equal(g.seen.length, 0)
})

test('graphql: a body over the limit that names the gate\'s fields is 413; one that does not is GitLab\'s (test/admin/graphql-streaming.test.ts)', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN }, gql(READ) + ' '.repeat(1 << 20))
  assert.equal(res.status, 413)
  assert.equal(res.json().code, 'GRAPHQL_BODY_TOO_LARGE')
  // Not the gate's: the configuration API lets it through, and the identity stage streams a JSON
  // body over its own limit through the JSON guard, which finds no job token in it.
  const spaces = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN }, Buffer.alloc((1 << 20) + 1, 0x20))
  assert.equal(spaces.status, 200, spaces.text)
  assert.deepEqual(g.seen.map(r => r.bytes), [(1 << 20) + 1], 'only the body that is not the gate\'s reaches GitLab')
})

test('graphql: a projectPath is a full path, never an id: "200" and "." name no project', async t => {
  const g = await adminGate(t)
  for (const projectPath of ['200', '.', 'lib']) {
    const update = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN },
      gql(UPDATE, { input: { projectPath, packageRegistry: [{ format: 'maven', write: 'MAINTAINER' }] } }))
    assert.equal(update.status, 200, update.text)
    assert.equal(update.json().errors?.[0]?.extensions?.code, 'ADMIN_PROJECT_NOT_FOUND', `${projectPath}: ${update.text}`)
    const read = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN }, gql(READ.replace('acme/lib', projectPath)))
    assert.equal(read.json().errors?.[0]?.extensions?.code, 'ADMIN_PROJECT_NOT_FOUND', `${projectPath}: ${read.text}`)
  }
  assert.equal((await g.store.get(200))?.packageRules, undefined, 'project 200 untouched')
  assert.equal(g.seen.length, 0)
})

test('graphql: a moved project\'s old path names no project, neither as projectPath nor as a target (GitLab\'s mutations follow no redirect)', async t => {
  const g = await adminGate(t)
  g.gitlab.redirects.set('acme/old-lib', 200)
  g.gitlab.redirects.set('acme/old-app', 100)
  for (const caller of [{ 'private-token': USERS.maintainer }, { 'private-token': ADMIN }]) {
    const update = await send(g.url, 'POST', '/api/graphql', { ...json, ...caller },
      gql(UPDATE, { input: { projectPath: 'acme/old-lib', packageRegistry: [{ format: 'maven', write: 'MAINTAINER' }] } }))
    assert.equal(update.json().errors?.[0]?.extensions?.code, 'ADMIN_PROJECT_NOT_FOUND', update.text)
  }
  const add = await send(g.url, 'POST', '/api/graphql', { ...json, 'private-token': ADMIN },
    gql('mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/old-app"}) { errors } }'))
  assert.equal(add.status, 200, add.text)
  assert.match(String(add.json().data?.ciJobTokenScopeAddProject?.errors?.[0]), /targetProjectPath "acme\/old-app" is not a project/, add.text)
  assert.equal((await g.store.get(200))?.packageRules, undefined, 'project 200 untouched')
  assert.equal(g.seen.length, 0)
})
