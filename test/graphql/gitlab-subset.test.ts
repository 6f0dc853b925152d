import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { assertValidSchema, isInterfaceType, isObjectType, isUnionType, type GraphQLSchema } from 'graphql'
import { parseSchema } from '../../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../../src/graphql/load.ts'
import type { Kind } from '../../src/graphql/catalog.ts'

const GITLAB_SUBSET_FILE = fileURLToPath(new URL('../fixtures/graphql/gitlab-subset.graphql', import.meta.url))

const schema = parseSchema(readFileSync(GITLAB_SUBSET_FILE, 'utf8'), GITLAB_SUBSET_FILE)
const catalog = loadGraphqlCatalog()
const listed = new Set(catalog.entries.map(e => `${e.kind} ${e.graphqlName}`))

// What tests rely on being in the catalog, and what they rely on not being there.
const LISTED: ReadonlyArray<[Kind, string]> = [
  ['Field', 'Query.project'], ['Field', 'Query.group'], ['Field', 'Query.runner'], ['Field', 'Query.runners'],
  ['Field', 'Query.organization'], ['Field', 'Project.runners'], ['Field', 'Project.pipelineSchedules'],
  ['Field', 'Group.runners'], ['Field', 'Issue.createNoteEmail'], ['Field', 'WorkItem.createNoteEmail'],
  ['Type', 'Project'], ['Type', 'Group'], ['Type', 'CurrentUser'], ['Type', 'UserCore'], ['Type', 'Vulnerability'],
  ['Type', 'CountableVulnerability'], ['Type', 'CiRunner'], ['Type', 'Issue'], ['Type', 'WorkItem'],
  ['Type', 'PipelineSchedule'], ['Type', 'Organization'], ['Type', 'UserPreferences'],
  ['Mutation', 'vulnerabilityCreate'], ['Mutation', 'ciJobTokenScopeAddGroupOrProject'],
  ['Mutation', 'ciJobTokenScopeRemoveProject'], ['Mutation', 'ciJobTokenScopeUpdatePolicies'],
  ['Mutation', 'projectCiCdSettingsUpdate'], ['Mutation', 'userPreferencesUpdate'], ['Mutation', 'organizationCreate']
]
const NOT_LISTED: ReadonlyArray<[Kind, string]> = [
  ['Field', 'Query.namespace'], ['Field', 'Query.currentUser'], ['Field', 'Query.vulnerability'], ['Field', 'Query.echo'],
  ['Type', 'Namespace'], ['Type', 'MergeRequest'], ['Type', 'Snippet'], ['Type', 'Epic'],
  ['Type', 'VulnerabilityCreatePayload'], ['Mutation', 'echoCreate']
]

function inSchema (s: GraphQLSchema, kind: Kind, name: string): boolean {
  if (kind === 'Type') return isObjectType(s.getType(name))
  if (kind === 'Mutation') return s.getMutationType()?.getFields()[name] !== undefined
  const [parent, field] = name.split('.')
  const type = s.getType(parent ?? '')
  return isObjectType(type) && type.getFields()[field ?? ''] !== undefined
}

test('the GitLab subset schema builds and is valid', () => {
  assertValidSchema(schema)
})

test('every name the tests take as listed is in the catalog and in the subset schema', () => {
  for (const [kind, name] of LISTED) {
    assert.ok(listed.has(`${kind} ${name}`), `${kind} ${name} is not in catalog/graphql-permissions.json`)
    assert.ok(inSchema(schema, kind, name), `${kind} ${name} is not in the subset schema`)
  }
})

test('every name the tests take as unlisted is absent from the catalog and present in the subset schema', () => {
  for (const [kind, name] of NOT_LISTED) {
    assert.ok(!listed.has(`${kind} ${name}`), `${kind} ${name} is in catalog/graphql-permissions.json`)
    assert.ok(inSchema(schema, kind, name), `${kind} ${name} is not in the subset schema`)
  }
})

test('an interface and a union each have a listed and an unlisted possible type', () => {
  const iface = schema.getType('NoteableInterface')
  const union = schema.getType('Issuable')
  assert.ok(isInterfaceType(iface) && isUnionType(union))
  for (const abstract of [iface, union]) {
    const names = schema.getPossibleTypes(abstract).map(t => t.name)
    assert.ok(names.some(n => listed.has(`Type ${n}`)), `${abstract.name}: no listed possible type in ${names.join(', ')}`)
    assert.ok(names.some(n => !listed.has(`Type ${n}`)), `${abstract.name}: no unlisted possible type in ${names.join(', ')}`)
  }
})

test('the mutations use GitLab\'s argument and input names', () => {
  const input = (name: string): string[] => {
    const type = schema.getType(name)
    assert.ok(type !== undefined && 'getFields' in type, name)
    return Object.keys(type.getFields())
  }
  assert.deepEqual(input('CiJobTokenScopeAddGroupOrProjectInput'), ['clientMutationId', 'projectPath', 'targetPath', 'defaultPermissions', 'jobTokenPolicies'])
  assert.deepEqual(input('CiJobTokenScopeRemoveProjectInput'), ['clientMutationId', 'projectPath', 'targetProjectPath', 'direction'])
  assert.deepEqual(input('CiJobTokenScopeUpdatePoliciesInput'), ['clientMutationId', 'projectPath', 'targetPath', 'defaultPermissions', 'jobTokenPolicies'])
  assert.ok(input('ProjectCiCdSettingsUpdateInput').includes('fullPath'))
  assert.ok(input('VulnerabilityCreateInput').includes('project'))
})
