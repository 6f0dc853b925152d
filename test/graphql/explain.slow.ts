import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli } from '../../src/cli/main.ts'
import { GraphqlCatalogIndex, explainGraphql, parseDocument, parseSchema, targetsOfArguments, type GraphqlExplanation } from '../../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../../src/graphql/load.ts'

const INDEX = new GraphqlCatalogIndex(loadGraphqlCatalog())

// A small slice of GitLab's schema: an interface, a union-free tree, a payload type.
const SDL = `
type Query { project(fullPath: ID!): Project  group(fullPath: ID!): Group  node(id: ID!): Node  echo: String }
type Mutation { vulnerabilityCreate(input: VulnerabilityCreateInput!): VulnerabilityCreatePayload }
input VulnerabilityCreateInput { project: ID!, name: String }
type VulnerabilityCreatePayload { vulnerability: Vulnerability, errors: [String!]! }
interface Node { id: ID! }
type Project implements Node { id: ID! fullPath: String! vulnerabilities: [Vulnerability!]! runners: [CiRunner!]! widgets: [Widget!]! }
type Group implements Node { id: ID! runners: [CiRunner!]! }
type Vulnerability implements Node { id: ID! title: String project: Project }
type CiRunner implements Node { id: ID! }
type Widget implements Node { id: ID! title: String }
`
const SCHEMA = parseSchema(SDL)

function cli (t: { after: (fn: () => void) => void }, files: Record<string, string>): { dir: string, run: (args: string[], env?: Record<string, string>) => Promise<{ code: number, out: string, err: string }> } {
  const dir = mkdtempSync(join(tmpdir(), 'explain-graphql-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return {
    dir,
    run: async (args, env = {}) => {
      let out = ''
      let err = ''
      const code = await runCli(['explain-graphql', ...args.map(a => a.startsWith('@') ? join(dir, a.slice(1)) : a)], { out: s => { out += s }, err: s => { err += s } }, env)
      return { code, out, err }
    }
  }
}

const summary = (result: GraphqlExplanation): Array<[string, string, string[], string]> =>
  result.operations.flatMap(op => op.touches.map(t => [`${op.name}`, `${t.kind} ${t.name} @${t.path}`, t.permissions.map(p => `${p.permission}/${p.boundary}`), t.target === null ? '-' : `${t.target.kind}:${t.target.path ?? t.target.id}`] as [string, string, string[], string]))

test('a mutation document: each mutation, its permission, boundary and project; unlisted mutations named; no schema said', async (t) => {
  const doc = `mutation AddToAllowlist {
    ciJobTokenScopeAddGroupOrProject(input: { projectPath: "grp/app", targetPath: "grp/lib" }) { errors }
    vulnerabilityCreate(input: { project: "gid://gitlab/Project/12", name: "x" }) { errors }
    vulnerabilityDismiss(input: { id: "gid://gitlab/Vulnerability/5" }) { errors }
    somethingNew(input: { projectPath: "grp/app" }) { errors }
  }`
  const result = explainGraphql(parseDocument(doc), INDEX)
  assert.equal(result.schema, false)
  assert.deepEqual(summary(result), [
    ['AddToAllowlist', 'mutation ciJobTokenScopeAddGroupOrProject @ciJobTokenScopeAddGroupOrProject', ['create_job_token_scope_allowlist/Project'], 'project:grp/app'],
    ['AddToAllowlist', 'mutation vulnerabilityCreate @vulnerabilityCreate', ['create_vulnerability/Project'], 'project:12'],
    ['AddToAllowlist', 'mutation vulnerabilityDismiss @vulnerabilityDismiss', ['update_vulnerability/Project'], 'object:5']
  ])
  assert.deepEqual(result.operations[0]!.notInCatalog, ['mutation somethingNew'])
  assert.equal(result.operations[0]!.operation, 'mutation')

  const { run } = cli(t, { 'add.graphql': doc })
  const { code, out } = await run(['@add.graphql'])
  assert.equal(code, 0)
  assert.match(out, /^no schema given \(--schema or GATE_GRAPHQL_SCHEMA\): only mutations and root query fields are matched/)
  assert.match(out, /operation AddToAllowlist \(mutation\)\n {2}mutation ciJobTokenScopeAddGroupOrProject\n {11}needs create_job_token_scope_allowlist \(Project\); applies to project "grp\/app", from input\.projectPath\n/)
  assert.match(out, /applies to Vulnerability 5 \(its project or group\), from input\.id/)
  assert.match(out, /not in the catalog, refused to fine-grained tokens at \/api\/graphql: mutation somethingNew\n$/)
})

test('aliases: one mutation twice under two aliases, each with its own project', () => {
  const result = explainGraphql(parseDocument(`mutation {
    first: ciJobTokenScopeRemoveProject(input: { projectPath: "a/one", targetProjectPath: "x" }) { errors }
    second: ciJobTokenScopeRemoveProject(input: { projectPath: "a/two", targetProjectPath: "x" }) { errors }
  }`), INDEX)
  assert.equal(result.operations[0]!.name, '(anonymous)')
  assert.deepEqual(summary(result), [
    ['(anonymous)', 'mutation ciJobTokenScopeRemoveProject @first', ['delete_job_token_scope_allowlist/Project'], 'project:a/one'],
    ['(anonymous)', 'mutation ciJobTokenScopeRemoveProject @second', ['delete_job_token_scope_allowlist/Project'], 'project:a/two']
  ])
})

test('fragments and inline fragments at the root are read without a schema; a root query field at several boundaries', () => {
  const result = explainGraphql(parseDocument(`
    query Runners { ...Roots ... on Query { runner(id: "gid://gitlab/Ci::Runner/3") { id } } echo }
    fragment Roots on Query { project(fullPath: "grp/app") { id } group(fullPath: "grp") { id } }
  `), INDEX)
  assert.deepEqual(summary(result), [
    ['Runners', 'field Query.project @project', ['read_project/Project'], 'project:grp/app'],
    ['Runners', 'field Query.group @group', ['read_group/Group'], 'group:grp'],
    ['Runners', 'field Query.runner @runner', ['read_runner/Project', 'read_runner/Group', 'read_runner/Instance'], 'object:3']
  ])
  assert.deepEqual(result.operations[0]!.notInCatalog, ['field Query.echo'])
})

test('two operations: each is explained; --operation-name picks one; an unknown name is an error', async (t) => {
  const doc = `query ReadIt($p: ID!) { project(fullPath: $p) { id } }
    mutation Hidden($p: ID!) { ciJobTokenScopeAddProject(input: { projectPath: $p, targetProjectPath: "evil/x" }) { errors } }`
  const both = explainGraphql(parseDocument(doc), INDEX, { variables: { p: 'grp/app' } })
  assert.deepEqual(both.operations.map(op => [op.name, op.operation, op.touches.map(x => x.permissions[0]!.permission)]), [
    ['ReadIt', 'query', ['read_project']],
    ['Hidden', 'mutation', ['create_job_token_scope_allowlist']]
  ])
  const { run } = cli(t, { 'two.graphql': doc })
  const picked = await run(['@two.graphql', '--operation-name', 'Hidden', '--variables', '{"p": "grp/app"}', '--json'])
  assert.equal(picked.code, 0)
  const json = JSON.parse(picked.out) as GraphqlExplanation
  assert.deepEqual(json.operations.map(op => op.name), ['Hidden'])
  assert.deepEqual(json.operations[0]!.touches[0], {
    kind: 'mutation', name: 'ciJobTokenScopeAddProject', path: 'ciJobTokenScopeAddProject',
    permissions: [{ permission: 'create_job_token_scope_allowlist', boundary: 'Project' }],
    target: { kind: 'project', path: 'grp/app', from: 'input.projectPath' }
  })
  const missing = await run(['@two.graphql', '--operation-name', 'Nope'])
  assert.equal(missing.code, 2)
  assert.equal(missing.err, 'job-token-gate: no operation named "Nope" (the document has ReadIt, Hidden)\n')
})

test('variables carry the project path: from --variables JSON or a file, an input object variable, a default value', async (t) => {
  const doc = `mutation Update($input: CiJobTokenScopeUpdatePoliciesInput!) { ciJobTokenScopeUpdatePolicies(input: $input) { errors } }
    query Defaulted($path: ID! = "grp/default") { project(fullPath: $path) { id } }`
  const { run } = cli(t, { 'doc.graphql': doc, 'vars.json': JSON.stringify({ input: { projectPath: 'grp/from-file', targetPath: 'other', jobTokenPolicies: ['READ_PACKAGES'] } }) })
  const fromFile = JSON.parse((await run(['@doc.graphql', '--variables', '@vars.json', '--json'])).out) as GraphqlExplanation
  assert.deepEqual(fromFile.operations.map(op => op.touches.map(x => [x.name, x.permissions[0]!.permission, x.target])), [
    [['ciJobTokenScopeUpdatePolicies', 'update_job_token_scope', { kind: 'project', path: 'grp/from-file', from: 'input.projectPath' }]],
    [['Query.project', 'read_project', { kind: 'project', path: 'grp/default', from: 'fullPath' }]]
  ])
  const inline = JSON.parse((await run(['@doc.graphql', '--variables', '{"input": {"projectPath": "grp/inline"}, "path": "grp/given"}', '--json'])).out) as GraphqlExplanation
  assert.deepEqual(inline.operations.map(op => op.touches[0]!.target?.path), ['grp/inline', 'grp/given'])
  const bad = await run(['@doc.graphql', '--variables', '{"input": '])
  assert.equal(bad.code, 2)
  assert.match(bad.err, /^job-token-gate: --variables: not valid JSON/)
  assert.deepEqual(targetsOfArguments({ groupPath: 'g' }, 'x'), [{ kind: 'group', path: 'g', from: 'groupPath' }])
  assert.deepEqual(targetsOfArguments({ fullPath: 'ns' }, 'namespace'), [{ kind: 'namespace', path: 'ns', from: 'fullPath' }])
  assert.deepEqual(targetsOfArguments({ id: 'not-a-gid', name: 'x' }, 'x'), [])
})

test('with an SDL schema, TypeInfo types every selection: nested fields, fragments, inline fragments on an interface', async (t) => {
  const doc = `query Deep {
    project(fullPath: "grp/app") { ...ProjectBits runners { id } }
    node(id: "gid://gitlab/Group/7") { id ... on Group { runners { id } } ... on Widget { title } }
  }
  fragment ProjectBits on Project { vulnerabilities { title project { id } } widgets { title } }
  mutation Create { vulnerabilityCreate(input: { project: "gid://gitlab/Project/12" }) { vulnerability { id } errors } }`
  const result = explainGraphql(parseDocument(doc), INDEX, { schema: SCHEMA })
  assert.equal(result.schema, true)
  const touched = (op: number): string[] => result.operations[op]!.touches.map(x => `${x.kind} ${x.name} @${x.path} ${x.target?.kind ?? '-'}:${x.target?.path ?? x.target?.id ?? ''}`)
  assert.deepEqual(touched(0), [
    'field Query.project @project project:grp/app',
    'type Project @project project:grp/app',
    // read through the fragment, at the spread's path and project
    'type Vulnerability @project.vulnerabilities project:grp/app',
    'field Project.runners @project.runners project:grp/app',
    'type CiRunner @project.runners project:grp/app',
    // Query.node returns the Node interface: every object type it may return is checked
    'type Project @node group:7',
    'type Group @node group:7',
    'type Vulnerability @node group:7',
    'type CiRunner @node group:7',
    // CiRunner under the same group again: listed once
    'field Group.runners @node.runners group:7'
  ])
  // Widget is not on the page: reached through a fragment, an interface and an inline fragment.
  assert.deepEqual(result.operations[0]!.notInCatalog, ['type Widget', 'field Query.node'])
  assert.deepEqual(touched(1), [
    'mutation vulnerabilityCreate @vulnerabilityCreate project:12',
    'type Vulnerability @vulnerabilityCreate.vulnerability project:12'
  ])
  // A mutation's payload type wraps what it returns: it needs no permission of its own.
  assert.deepEqual(result.operations[1]!.notInCatalog, [])

  // A fragment that spreads itself below a field (invalid GraphQL) is read once, not forever.
  const cyclic = explainGraphql(parseDocument(`query { project(fullPath: "a/b") { ...Loop } }
    fragment Loop on Project { vulnerabilities { project { ...Loop } } }`), INDEX, { schema: SCHEMA })
  assert.deepEqual(cyclic.operations[0]!.touches.map(x => `${x.kind} ${x.name} @${x.path}`), [
    'field Query.project @project', 'type Project @project', 'type Vulnerability @project.vulnerabilities'
  ])

  // The same through the CLI, the schema from --schema or GATE_GRAPHQL_SCHEMA.
  const { dir, run } = cli(t, { 'deep.graphql': doc, 'schema.graphql': SDL })
  const viaFlag = await run(['@deep.graphql', '--schema', '@schema.graphql', '--operation-name', 'Deep'])
  const viaEnv = await run(['@deep.graphql', '--operation-name', 'Deep'], { GATE_GRAPHQL_SCHEMA: join(dir, 'schema.graphql') })
  assert.equal(viaFlag.code, 0)
  assert.equal(viaFlag.out, viaEnv.out)
  assert.doesNotMatch(viaFlag.out, /no schema given/)
  assert.match(viaFlag.out, / {2}type {5}Vulnerability at project\.vulnerabilities\n {11}needs read_vulnerability \(Project\); applies to project "grp\/app", from fullPath\n/)
  const badSchema = await run(['@deep.graphql', '--schema', '@deep.graphql'])
  assert.equal(badSchema.code, 2)
  assert.match(badSchema.err, /^job-token-gate: .*deep\.graphql: not a usable SDL schema/)
})

test('a document that does not parse: a clear error with line and column, exit 2, also from standard input', async (t) => {
  const { run } = cli(t, { 'broken.graphql': 'query {\n  project(fullPath: "a") {\n' })
  const result = await run(['@broken.graphql'])
  assert.equal(result.code, 2)
  assert.equal(result.out, '')
  assert.match(result.err, /^job-token-gate: .*broken\.graphql:3:1: Syntax Error: Expected Name, found <EOF>\.\n$/)

  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
  const child = spawnSync(process.execPath, ['--import', 'tsx', main, 'explain-graphql'], { input: 'mutation { ciLint(', encoding: 'utf8', timeout: 60_000 })
  assert.equal(child.status, 2, child.stderr)
  assert.match(child.stderr, /^job-token-gate: stdin:1:19: Syntax Error/)
  const ambiguous = spawnSync(process.execPath, ['--import', 'tsx', main, 'explain-graphql'], { input: '{ project(fullPath: "a/b" #\r, fullPath: "c/d"\n) { id } }', encoding: 'utf8', timeout: 60_000 })
  assert.equal(ambiguous.status, 2, ambiguous.stderr)
  assert.match(ambiguous.stderr, /^job-token-gate: stdin:1: GitLab's parser would read this document otherwise \(the gate refuses it, GRAPHQL_DOCUMENT_AMBIGUOUS\): a comment ends at a carriage return/)
  assert.throws(() => parseDocument('{ project(fullPath: "a/b", fullPath: "c/d") { id } }', 'doc.graphql'),
    /^GraphqlDocumentError: doc\.graphql: the GraphQL document gives field project the argument fullPath twice; GraphQL allows each name there once \(the gate refuses it, GRAPHQL_DOCUMENT_INVALID\)$/)
  const ok = spawnSync(process.execPath, ['--import', 'tsx', main, 'explain-graphql', '-', '--json'], { input: 'mutation { ciLint(projectPath: "g/p", content: "x") { errors } }', encoding: 'utf8', timeout: 60_000 })
  assert.equal(ok.status, 0, ok.stderr)
  assert.deepEqual((JSON.parse(ok.stdout) as GraphqlExplanation).operations[0]!.touches.map(x => x.permissions[0]!.permission), ['validate_ci_config'])
})
