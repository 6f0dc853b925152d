import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_CATALOG_DIR, CatalogError } from '../../src/catalog/load.ts'
import { findSharedNames, formatSharedNames, importGraphqlPages, mutationFieldName, parseGraphqlPage, permissionName } from '../../src/graphql/catalog.ts'
import { loadGraphqlCatalog, validateGraphqlCatalog } from '../../src/graphql/load.ts'
import { runCli } from '../../src/cli/main.ts'

const PAGE_FILE = join(DEFAULT_CATALOG_DIR, 'sources', 'graphql-pat-permissions.md')
const PAGE = readFileSync(PAGE_FILE, 'utf8')
const COMMITTED = readFileSync(join(DEFAULT_CATALOG_DIR, 'graphql-permissions.json'), 'utf8')

const TABLE = '| Action | Access | Kind | Name |\n|---|---|---|---|'
const page = (...sections: string[]): string => ['Fine-grained permissions for personal access tokens in the GraphQL API', 'Available fine-grained permissions', ...sections].join('\n') + '\n'

test('the committed GraphQL catalog is exactly what the import builds from the page, and npm run catalog:import rebuilds it', () => {
  assert.equal(importGraphqlPages([{ source: PAGE_FILE, text: PAGE }]), COMMITTED, 'run `npm run catalog:import` and commit catalog/graphql-permissions.json')
  const script = (JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['catalog:import']
  assert.match(script ?? '', /catalog import-graphql -o catalog\/graphql-permissions\.json catalog\/sources\/graphql-pat-permissions\.md/)
})

test('the catalog counts 251 rows: per kind and per boundary', () => {
  const { entries } = loadGraphqlCatalog()
  const count = (key: 'kind' | 'boundary'): Record<string, number> => {
    const counts: Record<string, number> = {}
    for (const e of entries) counts[e[key]] = (counts[e[key]] ?? 0) + 1
    return counts
  }
  assert.equal(entries.length, 251)
  assert.deepEqual(count('kind'), { Type: 71, Mutation: 166, Field: 14 })
  assert.deepEqual(count('boundary'), { Project: 165, Group: 36, Instance: 33, User: 17 })
})

test('known rows: resource, category, permission, boundary, kind and the GraphQL name', () => {
  const { entries } = loadGraphqlCatalog()
  const find = (name: string, boundary?: string) => entries.filter(e => e.graphqlName === name && (boundary === undefined || e.boundary === boundary))
  assert.deepEqual(find('ciJobTokenScopeAddGroupOrProject'), [{
    permission: 'create_job_token_scope_allowlist',
    action: 'Create',
    resource: 'Job Token Scope Allowlist',
    category: 'System Access resources',
    boundary: 'Project',
    kind: 'Mutation',
    graphqlName: 'ciJobTokenScopeAddGroupOrProject',
    pageName: 'CiJobTokenScopeAddGroupOrProject'
  }])
  assert.equal(find('vulnerabilityCreate')[0]?.permission, 'create_vulnerability')
  assert.equal(find('vulnerabilityCreate')[0]?.category, 'Application Security resources')
  assert.equal(find('DependencyLocation')[0]?.permission, 'read_dependency')
  assert.equal(find('DependencyLocation')[0]?.kind, 'Type')
  assert.deepEqual(find('safeDisablePipelineVariables').map(e => [e.permission, e.boundary]), [['update_ci_cd_setting', 'Group']])
  // Fields keep the page's Parent.field; one field at three boundaries of one permission.
  assert.deepEqual(find('Query.runner').map(e => [e.permission, e.boundary, e.kind]), [['read_runner', 'Project', 'Field'], ['read_runner', 'Group', 'Field'], ['read_runner', 'Instance', 'Field']])
  // The page writes a few mutations as their field already: the same field either way.
  assert.equal(find('approvalProjectRuleDelete')[0]?.pageName, 'approvalProjectRuleDelete')
  // The "Email" heading restored in the kept copy.
  assert.deepEqual(find('Email').map(e => [e.resource, e.category, e.permission, e.boundary]), [['Email', 'System Access resources', 'read_email', 'User']])
})

test('the permission name rule: action + resource in snake_case; the mutation field rule: first letter lowered', () => {
  const cases: Array<[string, string, string]> = [
    ['Create', 'Job Token Scope Allowlist', 'create_job_token_scope_allowlist'],
    ['Update', 'CI/CD Setting', 'update_ci_cd_setting'],
    ['Read', 'Dependency', 'read_dependency'],
    ['Create', 'Cluster Agent URL Configuration', 'create_cluster_agent_url_configuration'],
    ['Read', 'LDAP Admin Role Link', 'read_ldap_admin_role_link'],
    ['Validate', 'CI Config', 'validate_ci_config']
  ]
  for (const [action, resource, expected] of cases) assert.equal(permissionName(action, resource), expected, `${action} ${resource}`)
  assert.throws(() => permissionName('Read', ' / '), /cannot name the permission/)
  assert.equal(mutationFieldName('CiJobTokenScopeAddGroupOrProject'), 'ciJobTokenScopeAddGroupOrProject')
  assert.equal(mutationFieldName('VulnerabilityCreate'), 'vulnerabilityCreate')
  assert.equal(mutationFieldName('createContainerProtectionTagRule'), 'createContainerProtectionTagRule')
  const all = loadGraphqlCatalog().entries
  assert.ok(all.every(e => e.permission === permissionName(e.action, e.resource)))
})

test('a row the importer cannot read is refused with its line number', () => {
  const good = ['CI/CD resources', 'Pipeline', 'Grants the ability to read pipelines.', TABLE, '| Read | Project | Type | Pipeline |']
  assert.equal(parseGraphqlPage(page(...good)).length, 1)
  const bad = (row: string): string => page(...good.slice(0, 4), row) // the row is on line 8
  assert.throws(() => parseGraphqlPage(bad('| Read | Namespace | Type | Pipeline |'), 'p.md'), /^ImportError: p\.md:8: unknown boundary "Namespace"/)
  assert.throws(() => parseGraphqlPage(bad('| Read | Project | Subscription | Pipeline |'), 'p.md'), /^ImportError: p\.md:8: unknown kind "Subscription"/)
  assert.throws(() => parseGraphqlPage(bad('| Read | Project | Type |  |'), 'p.md'), /^ImportError: p\.md:8: empty name/)
  assert.throws(() => parseGraphqlPage(bad('| Read | Project | Field | pipelines |'), 'p.md'), /^ImportError: p\.md:8: field name "pipelines" is not Parent\.field/)
  assert.throws(() => parseGraphqlPage(bad('| Read | Project | Type |'), 'p.md'), /^ImportError: p\.md:8: expected 4 cells/)
  assert.throws(() => parseGraphqlPage(bad('| Read | Project | Type | Pipeline |\n| Read | Project | Type | Pipeline |'), 'p.md'), /^ImportError: p\.md:9: read_pipeline Project Type Pipeline is listed twice/)
  // A group heading followed straight by a description: the resource heading is missing.
  assert.throws(() => parseGraphqlPage(page('System Access resources', 'Grants the ability to read emails.', TABLE, '| Read | User | Type | Email |'), 'p.md'), /^ImportError: p\.md:3: "System Access resources" is followed by a description/)
  assert.throws(() => parseGraphqlPage(page('Pipeline', 'Grants the ability to read pipelines.', TABLE, '| Read | Project | Type | Pipeline |'), 'p.md'), /p\.md:3: resource "Pipeline" comes before any/)
  assert.throws(() => parseGraphqlPage(page('no tables here'), 'p.md'), /p\.md: no permission tables found/)
})

test('re-importing a page with one row added changes only that row (and the version)', () => {
  const anchor = '| Create | Project | Mutation | CiJobTokenScopeAddProject |\n'
  assert.ok(PAGE.includes(anchor))
  const newer = PAGE.replace(anchor, anchor + '| Create | Project | Mutation | CiJobTokenScopeAddGroup |\n')
  const before = COMMITTED.split('\n')
  const after = importGraphqlPages([{ source: PAGE_FILE, text: newer }]).split('\n')
  assert.equal(after.length, before.length + 1)
  const added = after.filter(line => !before.includes(line))
  const removed = before.filter(line => !after.includes(line))
  assert.equal(added.length, 2)
  assert.match(added[0]!, /^ {2}"version": "[0-9a-f]{12}",$/)
  assert.deepEqual(JSON.parse(added[1]!.replace(/,$/, '')), {
    permission: 'create_job_token_scope_allowlist', action: 'Create', resource: 'Job Token Scope Allowlist', category: 'System Access resources', boundary: 'Project', kind: 'Mutation', graphqlName: 'ciJobTokenScopeAddGroup', pageName: 'CiJobTokenScopeAddGroup'
  })
  assert.deepEqual(removed.map(l => l.replace(/"[0-9a-f]{12}"/, 'V')), ['  "version": V,'])
})

test('the loader validates the schema and the naming rule, naming the entry', () => {
  const doc = JSON.parse(COMMITTED) as { entries: Array<Record<string, unknown>> }
  const edited = (i: number, change: Record<string, unknown>): unknown => ({ ...doc, entries: doc.entries.map((e, j) => j === i ? { ...e, ...change } : e) })
  assert.equal(validateGraphqlCatalog(doc).entries.length, 251)
  assert.throws(() => validateGraphqlCatalog(edited(0, { boundary: 'Namespace' })), (err: Error) => err instanceof CatalogError && /\/entries\/0\/boundary must be equal to one of the allowed values/.test(err.message))
  assert.throws(() => validateGraphqlCatalog(edited(0, { permission: 'read_something_else' })), /entry 0 \(DependencyLocation\): permission is "read_something_else" but action and resource say "read_dependency"/)
  const mutation = doc.entries.findIndex(e => e['kind'] === 'Mutation')
  assert.throws(() => validateGraphqlCatalog(edited(mutation, { graphqlName: 'VulnerabilityCreate' })), /entries\/1\/graphqlName must match pattern/)
  assert.throws(() => validateGraphqlCatalog({ ...doc, entries: [...doc.entries, doc.entries[0]] }), /entry 251 \(DependencyLocation\): listed twice/)
})

test('catalog lint --graphql: the shipped catalog shares no name; a crafted page reports both permissions', async () => {
  let out = ''
  const io = { out: (t: string) => { out += t }, err: (t: string) => { out += t } }
  assert.equal(await runCli(['catalog', 'lint', '--graphql'], io), 0)
  assert.equal(out, '0 GraphQL names listed under more than one permission\n')
  const crafted = parseGraphqlPage(page(
    'CI/CD resources',
    'Pipeline', 'Grants the ability to read pipelines.', TABLE, '| Read | Project | Type | Pipeline |', '| Read | Group | Field | Query.runner |',
    'Runner', 'Grants the ability to read runners.', TABLE, '| Read | Project | Field | Query.runner |', '| Read | Instance | Field | Query.runner |', '| Read | Project | Type | CiRunner |',
    'Job', 'Grants the ability to read jobs.', TABLE, '| Read | Project | Type | Pipeline |', '| Read | Project | Type | CiJob |'
  ))
  const shared = findSharedNames(crafted)
  assert.deepEqual(shared.map(s => [s.kind, s.graphqlName, s.permissions.map(p => `${p.permission}:${p.boundaries.join('+')}`)]), [
    ['Type', 'Pipeline', ['read_pipeline:Project', 'read_job:Project']],
    ['Field', 'Query.runner', ['read_pipeline:Group', 'read_runner:Project+Instance']]
  ])
  assert.equal(formatSharedNames(shared), '2 GraphQL names listed under more than one permission\n' +
    'type Pipeline: read_pipeline (Project) and read_job (Project)\n' +
    'field Query.runner: read_pipeline (Group) and read_runner (Project, Instance)\n')
})
