import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GateError } from '../../src/errors.ts'
import { createGitlabClient, type GitlabClient } from '../../src/gitlab/client.ts'
import type { Boundary } from '../../src/graphql/catalog.ts'
import type { BoundaryTarget } from '../../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../../src/graphql/load.ts'
import { checkPermission, createTargetResolver, permissionLabels, TARGET_PROJECT_ENDPOINT, type TargetResolver } from '../../src/graphql/permission-check.ts'
import type { GranularScope, TokenScopes } from '../../src/graphql/token-scopes.ts'
import { SERVICE_TOKEN, startFakeTokenGitlab, type FakeTokenGitlab } from '../helpers/fake-token-gitlab.ts'

type FineGrained = Extract<TokenScopes, { kind: 'fine_grained' }>

// The world: user 7 owns the namespace "alice" (project 30); group 5 "grp" holds subgroup 6
// "grp/sub" (project 20 "grp/sub/app"), subgroup 8 "grp/docs.txt", projects 21 "grp/lib" and 22
// "grp/notes.txt"; group 9 "other" holds project 40.
const GROUPS = [
  { id: 5, fullPath: 'grp', parentId: null },
  { id: 6, fullPath: 'grp/sub', parentId: 5 },
  { id: 9, fullPath: 'other', parentId: null },
  { id: 8, fullPath: 'grp/docs.txt', parentId: 5 }
]
const PROJECTS = [
  { id: 20, path: 'grp/sub/app', namespace: { id: 6, kind: 'group' as const, fullPath: 'grp/sub' } },
  { id: 21, path: 'grp/lib', namespace: { id: 5, kind: 'group' as const, fullPath: 'grp' } },
  { id: 22, path: 'grp/notes.txt', namespace: { id: 5, kind: 'group' as const, fullPath: 'grp' } },
  { id: 30, path: 'alice/tool', namespace: { id: 70, kind: 'user' as const, fullPath: 'alice' }, ownerId: 7 },
  { id: 31, path: 'bob/tool', namespace: { id: 71, kind: 'user' as const, fullPath: 'bob' }, ownerId: 8 },
  { id: 40, path: 'other/thing', namespace: { id: 9, kind: 'group' as const, fullPath: 'other' } }
]

async function world (t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ fake: FakeTokenGitlab, gitlab: GitlabClient, resolve: TargetResolver }> {
  const fake = await startFakeTokenGitlab({ groups: GROUPS, projects: PROJECTS, userNamespaces: [{ id: 70, path: 'alice', ownerId: 7 }] })
  const gitlab = createGitlabClient({ url: fake.url, serviceToken: SERVICE_TOKEN, timeoutMs: 2_000 })
  t.after(async () => {
    await gitlab.close()
    await fake.close()
  })
  return { fake, gitlab, resolve: createTargetResolver({ gitlab }) }
}

function token (...scopes: Array<Partial<GranularScope> & Pick<GranularScope, 'access' | 'permissions'>>): FineGrained {
  return { kind: 'fine_grained', userId: 7, scopes: scopes.map(s => ({ projectId: null, groupId: null, ...s })) }
}
const need = (permission: string, boundary: Boundary): { permission: string, boundary: Boundary } => ({ permission, boundary })
const project = (path: string): BoundaryTarget => ({ kind: 'project', path, from: 'fullPath' })
const group = (path: string): BoundaryTarget => ({ kind: 'group', path, from: 'fullPath' })

test('access kind × boundary, as GitLab scopes them', async t => {
  const { resolve } = await world(t)
  // One permission throughout: what differs is the scope's access and the boundary.
  const read = 'read_project'
  const cases: Array<[string, FineGrained, Boundary, BoundaryTarget | null, boolean]> = [
    // all_memberships: every project and group the user can reach (GitLab decides the rest).
    ['all memberships, project', token({ access: 'all_memberships', permissions: [read] }), 'Project', project('other/thing'), true],
    ['all memberships, group', token({ access: 'all_memberships', permissions: [read] }), 'Group', group('other'), true],
    ['all memberships, other permission', token({ access: 'all_memberships', permissions: ['read_group'] }), 'Project', project('other/thing'), false],
    ['all memberships is not the user boundary', token({ access: 'all_memberships', permissions: [read] }), 'User', null, false],
    ['all memberships is not the instance', token({ access: 'all_memberships', permissions: [read] }), 'Instance', null, false],
    // selected_memberships: the project itself, or a group and everything under it.
    ['selected project', token({ access: 'selected_memberships', permissions: [read], projectId: 21 }), 'Project', project('grp/lib'), true],
    ['selected project, another project', token({ access: 'selected_memberships', permissions: [read], projectId: 21 }), 'Project', project('grp/sub/app'), false],
    ['selected group, its project', token({ access: 'selected_memberships', permissions: [read], groupId: 5 }), 'Project', project('grp/lib'), true],
    ['selected group, a subgroup\'s project', token({ access: 'selected_memberships', permissions: [read], groupId: 5 }), 'Project', project('grp/sub/app'), true],
    ['selected group, its subgroup', token({ access: 'selected_memberships', permissions: [read], groupId: 5 }), 'Group', group('grp/sub'), true],
    ['selected subgroup, its parent', token({ access: 'selected_memberships', permissions: [read], groupId: 6 }), 'Group', group('grp'), false],
    ['selected subgroup, a sibling project', token({ access: 'selected_memberships', permissions: [read], groupId: 6 }), 'Project', project('grp/lib'), false],
    ['selected group, another group\'s project', token({ access: 'selected_memberships', permissions: [read], groupId: 5 }), 'Project', project('other/thing'), false],
    ['selected project is not its group', token({ access: 'selected_memberships', permissions: [read], projectId: 21 }), 'Group', group('grp'), false],
    // personal_projects: projects in the user's own namespace, never a group.
    ['personal, own project', token({ access: 'personal_projects', permissions: [read] }), 'Project', project('alice/tool'), true],
    ['personal, someone else\'s', token({ access: 'personal_projects', permissions: [read] }), 'Project', project('bob/tool'), false],
    ['personal, a group project', token({ access: 'personal_projects', permissions: [read] }), 'Project', project('grp/lib'), false],
    ['personal, a group', token({ access: 'personal_projects', permissions: [read] }), 'Group', group('grp'), false],
    // user and instance: their own boundary only.
    ['user', token({ access: 'user', permissions: [read] }), 'User', null, true],
    ['user is not a project', token({ access: 'user', permissions: [read] }), 'Project', project('alice/tool'), false],
    ['instance', token({ access: 'instance', permissions: [read] }), 'Instance', null, true],
    ['instance is not the user', token({ access: 'instance', permissions: [read] }), 'User', null, false],
    // The user and instance boundaries ignore a target: they name none.
    ['user, with a project around', token({ access: 'user', permissions: [read] }), 'User', project('grp/lib'), true]
  ]
  for (const [name, scopes, boundary, target, ok] of cases) {
    const verdict = await checkPermission(scopes, [need(read, boundary)], target, resolve)
    assert.equal(verdict.ok, ok, name)
    if (!verdict.ok) assert.equal(verdict.boundary, boundary, name)
  }
})

test('any one of a touch\'s permissions suffices; at the target\'s own boundary when the entry lists it', async t => {
  const { resolve } = await world(t)
  const runner = [need('read_runner', 'Project'), need('read_runner', 'Group'), need('read_runner', 'Instance')]
  assert.equal((await checkPermission(token({ access: 'instance', permissions: ['read_runner'] }), runner, null, resolve)).ok, true)
  assert.equal((await checkPermission(token({ access: 'selected_memberships', permissions: ['read_runner'], groupId: 5 }), runner, group('grp'), resolve)).ok, true)
  // A project target is checked at the Project boundary, as GitLab picks the directive whose
  // boundary is the object's: a group scope still reaches it through the group.
  assert.equal((await checkPermission(token({ access: 'selected_memberships', permissions: ['read_runner'], groupId: 5 }), runner, project('grp/lib'), resolve)).ok, true)
  const denied = await checkPermission(token({ access: 'selected_memberships', permissions: ['read_runner'], groupId: 9 }), runner, project('grp/lib'), resolve)
  assert.equal(denied.ok, false)
  assert.equal(!denied.ok && denied.boundary, 'Project')
})

test('a target the gate cannot name passes when a scope of the boundary\'s kind holds the permission', async t => {
  const { resolve, fake } = await world(t)
  const selected = token({ access: 'selected_memberships', permissions: ['read_vulnerability'], projectId: 99 })
  assert.equal((await checkPermission(selected, [need('read_vulnerability', 'Project')], null, resolve)).ok, true)
  // A global ID of another object: GitLab finds its project and checks it; the gate looks nothing up.
  const vulnerability: BoundaryTarget = { kind: 'object', model: 'Vulnerability', id: '5', from: 'id' }
  assert.equal((await checkPermission(selected, [need('read_vulnerability', 'Project')], vulnerability, resolve)).ok, true)
  assert.equal(fake.calls.project + fake.calls.group + fake.calls.namespace, 0)
  // ... but not without the permission, nor with it at another boundary's kind only.
  assert.equal((await checkPermission(selected, [need('read_issue', 'Project')], null, resolve)).ok, false)
  assert.equal((await checkPermission(token({ access: 'user', permissions: ['read_vulnerability'] }), [need('read_vulnerability', 'Project')], null, resolve)).ok, false)
})

test('lookups happen only when the answer depends on where the target lies, and are cached', async t => {
  const { resolve, fake, gitlab } = await world(t)
  await checkPermission(token({ access: 'all_memberships', permissions: ['read_project'] }), [need('read_project', 'Project')], project('grp/sub/app'), resolve)
  await checkPermission(token({ access: 'selected_memberships', permissions: ['read_group'], groupId: 5 }), [need('read_project', 'Project')], project('grp/sub/app'), resolve)
  assert.equal(fake.calls.project, 0, 'no scope holding the permission needs the target')
  const selected = token({ access: 'selected_memberships', permissions: ['read_project'], groupId: 5 })
  assert.equal((await checkPermission(selected, [need('read_project', 'Project')], project('grp/sub/app'), resolve)).ok, true)
  assert.equal((await checkPermission(selected, [need('read_project', 'Project')], project('GRP/sub/app'), resolve)).ok, true)
  assert.equal(fake.calls.project, 1)
  assert.equal(fake.calls.group, 2, 'the subgroup and its parent, once each')
  await checkPermission(selected, [need('read_project', 'Project')], { kind: 'project', id: '21', from: 'input.projectId' }, resolve)
  await checkPermission(selected, [need('read_group', 'Group')], group('grp/sub'), resolve)
  assert.equal(fake.calls.group, 2, 'groups already seen are not asked again')
  assert.equal(gitlab.stats()[`${TARGET_PROJECT_ENDPOINT}:ok`], 2)
})

test('an id with leading zeros is that id: one lookup and one cache entry for every spelling', async t => {
  const { resolve, fake } = await world(t)
  const selected = token({ access: 'selected_memberships', permissions: ['read_project', 'read_group'], groupId: 5 })
  for (const id of ['21', '021', '0021', '00000021']) {
    assert.equal((await checkPermission(selected, [need('read_project', 'Project')], { kind: 'project', id, from: 'input.projectId' }, resolve)).ok, true, id)
  }
  assert.equal(fake.calls.project, 1, 'project 21 asked once')
  for (const id of ['6', '06', '0006']) {
    assert.equal((await checkPermission(selected, [need('read_group', 'Group')], { kind: 'group', id, from: 'input.groupId' }, resolve)).ok, true, id)
    await checkPermission(selected, [need('read_group', 'Group')], { kind: 'namespace', id, from: 'input.namespaceId' }, resolve)
  }
  assert.equal(fake.calls.group, 2, 'group 6 and its parent, once each')
  assert.equal(fake.calls.namespace, 1, 'namespace 6 asked once')
  // Zeros alone are no id, as before.
  assert.equal(await resolve({ kind: 'project', id: '000', from: 'input.projectId' }), null)
  assert.equal(fake.calls.project, 1)
})

test('a full path of digits keeps its zeros: `012` and `12` are two paths to GitLab, and two lookups', async t => {
  // GitLab's GraphQL reads a full path as a path, zeros and all; only a global ID's id is a number.
  const fake = await startFakeTokenGitlab({ groups: [{ id: 12, fullPath: '12', parentId: null }] })
  const gitlab = createGitlabClient({ url: fake.url, serviceToken: SERVICE_TOKEN, timeoutMs: 2_000 })
  t.after(async () => {
    await gitlab.close()
    await fake.close()
  })
  const resolve = createTargetResolver({ gitlab })
  const byPath = (path: string): BoundaryTarget => ({ kind: 'namespace', path, from: 'fullPath' })
  // No group is named "012": the answer for group 12 is not kept for the path "12".
  assert.equal(await resolve(byPath('012')), null)
  assert.deepEqual(await resolve(byPath('12')), { groupIds: [12], fullPath: '12' })
  assert.equal(await resolve(byPath('012')), null)
  // A global ID's id is a number: `012` is 12.
  assert.deepEqual((await resolve({ kind: 'namespace', id: '012', from: 'input.namespaceId' }))?.groupIds, [12])
})

test('a namespace target: by id, a user namespace is personal and a group has its ancestors; by path, a project or else a group', async t => {
  const { resolve } = await world(t)
  const byId = (id: string): BoundaryTarget => ({ kind: 'namespace', id, from: 'id' })
  assert.deepEqual(await resolve(byId('70')), { groupIds: [], personalNamespaceOwnerId: 7, fullPath: 'alice' })
  assert.deepEqual(await resolve(byId('6')), { groupIds: [6, 5], fullPath: 'grp/sub' })
  // A `fullPath` GitLab's GraphQL takes as a boundary: Project.find_by_full_path, else Group's.
  const namespace = (path: string): BoundaryTarget => ({ kind: 'namespace', path, from: 'fullPath' })
  assert.deepEqual(await resolve(namespace('grp/sub/app')), { projectId: 20, groupIds: [6, 5], fullPath: 'grp/sub/app' })
  assert.deepEqual(await resolve(namespace('grp/sub')), { groupIds: [6, 5], fullPath: 'grp/sub' })
  assert.equal(await resolve(namespace('alice')), null, 'a user namespace is neither')
  assert.equal(await resolve(namespace('nobody')), null)
})

test('a path that ends in .txt is looked up with its dot escaped: GitLab answers `/projects/grp%2Fnotes.txt` as text', async t => {
  const { resolve } = await world(t)
  const namespace = (path: string): BoundaryTarget => ({ kind: 'namespace', path, from: 'fullPath' })
  assert.deepEqual(await resolve(project('grp/notes.txt')), { projectId: 22, groupIds: [5], fullPath: 'grp/notes.txt' })
  assert.deepEqual(await resolve(group('grp/docs.txt')), { groupIds: [8, 5], fullPath: 'grp/docs.txt' })
  assert.deepEqual(await resolve(namespace('grp/docs.txt')), { groupIds: [8, 5], fullPath: 'grp/docs.txt' })
  const selected = token({ access: 'selected_memberships', permissions: ['read_project'], groupId: 5 })
  assert.equal((await checkPermission(selected, [need('read_project', 'Project')], project('grp/notes.txt'), resolve)).ok, true)
})

test('target not found: denied, naming the target; GitLab down: 503; unreadable: 502', async t => {
  const { resolve, fake } = await world(t)
  const selected = token({ access: 'selected_memberships', permissions: ['read_project'], groupId: 5 })
  const verdict = await checkPermission(selected, [need('read_project', 'Project')], project('grp/gone'), resolve)
  assert.equal(verdict.ok, false)
  assert.match(!verdict.ok ? verdict.message : '', /project grp\/gone was not found/)

  const lookupFails = async (target: BoundaryTarget, code: string, status: number): Promise<void> => {
    await assert.rejects(checkPermission(selected, [need('read_project', 'Project')], target, resolve), (err: unknown) => {
      assert.ok(err instanceof GateError)
      assert.equal(err.code, code)
      assert.equal(err.status, status)
      return true
    })
  }
  fake.fail.project = 'cut'
  await lookupFails(project('other/thing'), 'GRAPHQL_TARGET_LOOKUP_UNAVAILABLE', 503)
  fake.fail.project = { status: 500 }
  await lookupFails(project('other/thing'), 'GRAPHQL_TARGET_LOOKUP_UNAVAILABLE', 503)
  fake.fail.project = 'not_json'
  await lookupFails(project('other/thing'), 'GRAPHQL_TARGET_LOOKUP_FAILED', 502)
  // The service token refused: the gate's configuration, never a verdict on the caller.
  fake.fail.project = { status: 401 }
  await lookupFails(project('other/thing'), 'GRAPHQL_TARGET_LOOKUP_FAILED', 502)
  delete fake.fail.project
  // Failures are not kept.
  assert.equal((await checkPermission(selected, [need('read_project', 'Project')], project('other/thing'), resolve)).ok, false)
  assert.equal((await checkPermission(selected, [need('read_project', 'Project')], project('grp/lib'), resolve)).ok, true)
})

test('the deny names the missing permissions and boundary in GitLab\'s words, and the target', async t => {
  const { resolve } = await world(t)
  const labels = permissionLabels(loadGraphqlCatalog())
  const verdict = await checkPermission(
    token({ access: 'selected_memberships', permissions: ['read_project'], groupId: 9 }),
    [need('create_job_token_scope_allowlist', 'Project')],
    project('grp/lib'),
    resolve,
    { labels }
  )
  assert.deepEqual(verdict, {
    ok: false,
    permission: 'create_job_token_scope_allowlist',
    boundary: 'Project',
    message: 'Access denied: This operation requires a fine-grained personal access token with the following project permissions: [Job Token Scope Allowlist: Create]. Target: project grp/lib.'
  })
  const instance = await checkPermission(token({ access: 'user', permissions: [] }), [need('read_runner', 'Instance')], null, resolve)
  assert.equal(!instance.ok && instance.message, 'Access denied: This operation requires a fine-grained personal access token with the following instance permissions: [read_runner].')
})

test('a target resolver needs a token to look with', async () => {
  const gitlab = createGitlabClient({ url: 'http://127.0.0.1:9' })
  try {
    assert.throws(() => createTargetResolver({ gitlab }), /GATE_SERVICE_TOKEN/)
    assert.equal(typeof createTargetResolver({ gitlab, serviceToken: 'glpat-lookups' }), 'function')
  } finally {
    await gitlab.close()
  }
})

test('an answer by id for another project or group is a 502, not facts to decide on', async t => {
  // A project whose path is digits stands in for an answer mixed up in front of GitLab: asked for
  // id 99, the fake answers project 40's id; asked for group 98, group 9's.
  const fake = await startFakeTokenGitlab({
    groups: [...GROUPS, { id: 9, fullPath: '98', parentId: null }],
    projects: [...PROJECTS, { id: 40, path: '99', namespace: { id: 9, kind: 'group' as const, fullPath: 'other' } }]
  })
  const gitlab = createGitlabClient({ url: fake.url, serviceToken: SERVICE_TOKEN, timeoutMs: 2_000 })
  t.after(async () => {
    await gitlab.close()
    await fake.close()
  })
  const resolve = createTargetResolver({ gitlab })
  const selected = token({ access: 'selected_memberships', permissions: ['read_project'], groupId: 9 })
  for (const target of [{ kind: 'project', id: '99', from: ':id' }, { kind: 'group', id: '98', from: ':id' }] as BoundaryTarget[]) {
    await assert.rejects(checkPermission(selected, [need('read_project', 'Project')], target, resolve), (err: unknown) => {
      assert.ok(err instanceof GateError)
      assert.deepEqual([err.code, err.status], ['GRAPHQL_TARGET_LOOKUP_FAILED', 502])
      return true
    }, JSON.stringify(target))
  }
  // Asked by its id, project 40 is itself.
  assert.equal((await checkPermission(selected, [need('read_project', 'Project')], { kind: 'project', id: '40', from: ':id' }, resolve)).ok, true)
})
