import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import { checkStoredGrants, createInstanceSettings, DEFAULT_INSTANCE_SETTINGS, isFullPath, validateProjectGrants, type InstanceSettings } from '../../src/grants/model.ts'
import { GrantsValidationError } from '../../src/grants/errors.ts'

const policies = createPolicyIndex(loadCatalog().policies)
const settings = createInstanceSettings()
const validate = (doc: unknown, s: InstanceSettings = settings): ReturnType<typeof validateProjectGrants> => validateProjectGrants(doc, { settings: s, policies })

const entry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  targetType: 'project', targetId: 2, defaultPermissions: false, jobTokenPolicies: ['read_packages'], addedBy: { id: 1, username: 'root' }, createdAt: '2025-03-04T05:06:07Z', ...over
})
const doc = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  projectId: 1, projectPath: 'acme/app', inboundEnabled: true, entries: [entry()], ...over
})

/** The issues a document produces, as "path message" lines. */
function issues (value: unknown, s: InstanceSettings = settings): string[] {
  try {
    validate(value, s)
  } catch (err) {
    assert.ok(err instanceof GrantsValidationError, String(err))
    assert.equal(err.code, 'GRANTS_INVALID')
    assert.equal(err.status, 400)
    return err.issues.map(i => `${i.path} ${i.message}`)
  }
  return []
}

test('model: the instance defaults are GitLab 18 defaults', () => {
  assert.deepEqual({ ...DEFAULT_INSTANCE_SETTINGS }, { enforceInboundScope: true, maxProjectEntries: 200, maxGroupEntries: 200, unknownProject: 'empty_allowlist' })
  assert.ok(Object.isFrozen(createInstanceSettings()))
  assert.equal(createInstanceSettings({ enforceInboundScope: false }).enforceInboundScope, false)
  assert.throws(() => createInstanceSettings({ unknownProject: 'deny' as 'allow' }), /unknownProject/)
  assert.throws(() => createInstanceSettings({ maxGroupEntries: -1 }), /maxGroupEntries/)
  assert.throws(() => createInstanceSettings({ enforceInboundScope: 'yes' as unknown as boolean }), /enforceInboundScope/)
})

test('model: a valid document comes back normalized and frozen', () => {
  const input = doc({ entries: [entry(), entry({ targetType: 'group', targetId: 1, defaultPermissions: true, jobTokenPolicies: [], addedBy: undefined, targetPath: 'acme' })], packageRules: { npm: { write: 'maintainer' } } })
  const out = validate(input)
  assert.equal(out.projectId, 1)
  assert.equal(out.entries.length, 2)
  assert.equal(out.entries[1]!.addedBy, null, 'a missing addedBy is null')
  assert.equal(out.entries[1]!.targetPath, 'acme')
  assert.ok(Object.isFrozen(out) && Object.isFrozen(out.entries) && Object.isFrozen(out.entries[0]) && Object.isFrozen(out.packageRules))
  ;(input.packageRules as { npm: { write: string } }).npm.write = 'changed'
  assert.deepEqual(out.packageRules, { npm: { write: 'maintainer' } }, 'the copy does not share the caller\'s objects')
  assert.equal(validate(doc({ entries: [] })).entries.length, 0)
})

const invalid: Array<[string, unknown, string]> = [
  ['not an object', [], ' must be an object'],
  ['unknown field', doc({ inbound: true }), 'inbound is not a known field'],
  ['zero id', doc({ projectId: 0 }), 'projectId must be a positive integer'],
  ['fractional id', doc({ projectId: 1.5 }), 'projectId must be a positive integer'],
  ['string id', doc({ projectId: '1' }), 'projectId must be a positive integer'],
  ['path without namespace', doc({ projectPath: 'app' }), 'projectPath must be a full project path such as "group/project"'],
  ['path with a leading slash', doc({ projectPath: '/acme/app' }), 'projectPath must be a full project path such as "group/project"'],
  ['path with an empty segment', doc({ projectPath: 'acme//app' }), 'projectPath must be a full project path such as "group/project"'],
  ['path with braces (would break hash tags)', doc({ projectPath: 'acme/{app}' }), 'projectPath must be a full project path such as "group/project"'],
  ['inbound flag not boolean', doc({ inboundEnabled: 'true' }), 'inboundEnabled must be a boolean'],
  ['entries not an array', doc({ entries: {} }), 'entries must be an array'],
  ['packageRules not an object', doc({ packageRules: [] }), 'packageRules must be an object mapping package formats to rules'],
  ['packageRules unknown action', doc({ packageRules: { maven: { push: true } } }), 'packageRules.maven.push "push" is not a known action (known: read, write, delete)'],
  ['packageRules bad level', doc({ packageRules: { maven: { write: 'developer' } } }), 'packageRules.maven.write must be one of "maintainer", "job_token_and_maintainer"'],
  ['packageRules read false, job tokens write', doc({ packageRules: { maven: { read: false, delete: 'maintainer' } } }), 'packageRules.maven.write lets job tokens write packages they may not read (read is false); set it to "maintainer"'],
  ['packageRules job tokens delete what they may not write', doc({ packageRules: { maven: { write: 'maintainer', delete: 'job_token_and_maintainer' } } }), 'packageRules.maven.delete lets job tokens delete packages they may not write (write is "maintainer"); set it to "maintainer"'],
  ['entry not an object', doc({ entries: [7] }), 'entries[0] must be an object'],
  ['unknown entry field', doc({ entries: [entry({ defaultPermission: true })] }), 'entries[0].defaultPermission is not a known field'],
  ['bad target type', doc({ entries: [entry({ targetType: 'user' })] }), 'entries[0].targetType must be "project" or "group"'],
  ['negative target id', doc({ entries: [entry({ targetId: -2 })] }), 'entries[0].targetId must be a positive integer'],
  ['missing defaultPermissions', doc({ entries: [entry({ defaultPermissions: undefined })] }), 'entries[0].defaultPermissions must be a boolean'],
  ['policies not an array', doc({ entries: [entry({ jobTokenPolicies: 'read_packages' })] }), 'entries[0].jobTokenPolicies must be an array of policy names'],
  ['unknown policy', doc({ entries: [entry({ jobTokenPolicies: ['read_everything'] })] }), 'entries[0].jobTokenPolicies[0] "read_everything" is not a known job token policy'],
  ['deprecated policy', doc({ entries: [entry({ jobTokenPolicies: ['read_packages', 'read_containers'] })] }), 'entries[0].jobTokenPolicies[1] "read_containers" is deprecated and no longer accepted'],
  ['upper-case policy', doc({ entries: [entry({ jobTokenPolicies: ['READ_PACKAGES'] })] }), 'entries[0].jobTokenPolicies[0] "READ_PACKAGES" must be written lower-case: "read_packages"'],
  ['policy twice', doc({ entries: [entry({ jobTokenPolicies: ['read_jobs', 'read_jobs'] })] }), 'entries[0].jobTokenPolicies[1] lists "read_jobs" twice'],
  ['bad addedBy', doc({ entries: [entry({ addedBy: { name: 'root' } })] }), 'entries[0].addedBy must be null or { id: positive integer, username?: string }'],
  ['bad createdAt', doc({ entries: [entry({ createdAt: 'yesterday' })] }), 'entries[0].createdAt must be an ISO 8601 date-time'],
  ['entry naming the project itself', doc({ entries: [entry({ targetId: 1 })] }), 'entries[0] names the project itself; self access needs no entry'],
  ['same target twice', doc({ entries: [entry(), entry({ defaultPermissions: true })] }), 'entries[1] names project 2 again; each target has one entry']
]

for (const [name, value, expected] of invalid) {
  test(`model: refuses ${name}`, () => {
    assert.deepEqual(issues(value), [expected])
  })
}

test('model: a group entry may share its id with the project (ids are per type)', () => {
  assert.deepEqual(issues(doc({ entries: [entry({ targetType: 'group', targetId: 1 })] })), [])
})

test('model: every problem is reported at once', () => {
  const found = issues({ projectId: -1, projectPath: 'x', inboundEnabled: 1, entries: [entry({ targetId: 0, createdAt: 5 })] })
  assert.equal(found.length, 5, found.join('\n'))
  assert.throws(() => validate({ projectId: -1 }), /invalid job token scope settings:\n {2}projectId must be a positive integer/)
})

test('model: at most 200 project and 200 group entries, or the configured limits', () => {
  const many = (type: string, n: number): Array<Record<string, unknown>> => Array.from({ length: n }, (_, i) => entry({ targetType: type, targetId: 1000 + i }))
  assert.deepEqual(issues(doc({ entries: [...many('project', 200), ...many('group', 200)] })), [])
  assert.deepEqual(issues(doc({ entries: many('project', 201) })), ['entries has 201 project entries; the limit is 200'])
  assert.deepEqual(issues(doc({ entries: many('group', 201) })), ['entries has 201 group entries; the limit is 200'])
  const small = createInstanceSettings({ maxProjectEntries: 1, maxGroupEntries: 0 })
  assert.deepEqual(issues(doc({ entries: [...many('project', 2), ...many('group', 1)] }), small), [
    'entries has 2 project entries; the limit is 1',
    'entries has 1 group entries; the limit is 0'
  ])
})

test('model: documents read back from a store are checked for shape only', () => {
  const stored = doc({ entries: [...Array.from({ length: 250 }, (_, i) => entry({ targetId: 10 + i })), entry({ targetId: 5, jobTokenPolicies: ['read_containers', 'retired_policy'] })] })
  assert.equal(checkStoredGrants(stored).entries.length, 251)
  assert.throws(() => checkStoredGrants(doc({ projectId: 'x' })), GrantsValidationError)
})

test('model: full paths are GitLab paths', () => {
  for (const ok of ['a/b', 'Acme.Corp/sub_group/my-app', 'g/s/s/s/p', '_x/y', 'acme/.dotfiles', '.hidden/app']) assert.ok(isFullPath(ok), ok)
  for (const bad of ['', 'a', 'a/', '/a/b', 'a//b', 'a/-b', 'a/b c', 'a/b%2Fc', 'a/{b}', '../etc', 'a/./b', 'a/..', 'a/' + 'x'.repeat(3000)]) assert.ok(!isFullPath(bad), bad)
})
