import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GateError } from '../../src/errors.ts'
import { createGitlabClient, type GitlabClient } from '../../src/gitlab/client.ts'
import { createTokenScopeResolver, TOKEN_SELF_ENDPOINT, type TokenScopeResolverOptions } from '../../src/graphql/token-scopes.ts'
import { createTokenRegistry, handleRegistryRequest } from '../../src/graphql/token-registry.ts'
import { startFakeTokenGitlab, tokenRecord, type FakeTokenGitlab } from '../helpers/fake-token-gitlab.ts'
import { REFUSED_PORT } from '../helpers/ports.ts'

const FINE = 'glpat-fine-grained-token-1'
const LEGACY = 'glpat-legacy-token-2'
const SCOPES = [
  { access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist'], project_id: null, group_id: 5 },
  { access: 'selected_memberships', permissions: ['read_vulnerability'], project_id: 12, group_id: null },
  { access: 'user', permissions: ['read_user'], project_id: null, group_id: null },
  { access: 'personal_projects', permissions: ['read_project'] }
]

function sha256 (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

async function world (t: { after: (fn: () => Promise<void> | void) => void }, extra: Partial<TokenScopeResolverOptions> = {}): Promise<{ fake: FakeTokenGitlab, gitlab: GitlabClient, resolver: ReturnType<typeof createTokenScopeResolver> }> {
  const fake = await startFakeTokenGitlab({
    tokens: {
      [FINE]: { self: tokenRecord(41, 7, SCOPES) },
      [LEGACY]: { self: tokenRecord(42, 7) }
    }
  })
  const gitlab = createGitlabClient({ url: fake.url, timeoutMs: 2_000 })
  t.after(async () => {
    await gitlab.close()
    await fake.close()
  })
  return { fake, gitlab, resolver: createTokenScopeResolver({ gitlab, ...extra }) }
}

async function rejectsWith (promise: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof GateError, `expected a GateError, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.equal(err.status, status)
    // The answer never carries the token nor GitLab's detail.
    assert.ok(!err.publicMessage.includes('glpat-'))
    return true
  })
}

test('a fine-grained token: its scopes as GitLab lists them, ids and user included', async t => {
  const { resolver } = await world(t)
  const scopes = await resolver.scopesOf(FINE)
  assert.deepEqual(scopes, {
    kind: 'fine_grained',
    userId: 7,
    scopes: [
      { access: 'selected_memberships', permissions: ['read_project', 'create_job_token_scope_allowlist'], projectId: null, groupId: 5 },
      { access: 'selected_memberships', permissions: ['read_vulnerability'], projectId: 12, groupId: null },
      { access: 'user', permissions: ['read_user'], projectId: null, groupId: null },
      { access: 'personal_projects', permissions: ['read_project'], projectId: null, groupId: null }
    ]
  })
})

test('a legacy token: its scopes from self; an OAuth token: from /oauth/token/info; one neither knows is "refused"', async t => {
  const { resolver, fake } = await world(t)
  fake.tokens.set('glpat-revoked', { self: 401 })
  fake.tokens.set('glpat-read-api', { self: { ...tokenRecord(43, 7), scopes: ['read_api', 'read_user'] } })
  fake.tokens.set('oauth-read-api', { self: 401, tokenInfo: { resource_owner_id: 7, scope: ['read_api'], scopes: ['read_api'], expires_in: 7200, application: { uid: 'app' }, created_at: 1 } })
  fake.tokens.set('oauth-old-doorkeeper', { self: 401, tokenInfo: { resource_owner_id: 7, scope: 'api read_user', expires_in: 7200 } })
  assert.deepEqual(await resolver.scopesOf(LEGACY), { kind: 'legacy', scopes: ['api'] })
  assert.deepEqual(await resolver.scopesOf('glpat-read-api'), { kind: 'legacy', scopes: ['read_api', 'read_user'] })
  assert.deepEqual(await resolver.scopesOf('oauth-read-api'), { kind: 'legacy', scopes: ['read_api'] })
  assert.deepEqual(await resolver.scopesOf('oauth-old-doorkeeper'), { kind: 'legacy', scopes: ['api', 'read_user'] })
  assert.deepEqual(await resolver.scopesOf('glpat-nobody-knows'), { kind: 'refused' })
  assert.deepEqual(await resolver.scopesOf('glpat-revoked'), { kind: 'refused' })
  // Token info is asked as the OAuth token itself, and only for tokens self does not know.
  assert.equal(fake.calls.token_info, 4)
})

test('scopes GitLab does not show are "other"; token info unreachable is a 503, never a guess', async t => {
  const { resolver, fake } = await world(t)
  const { scopes: _, ...noScopes } = tokenRecord(44, 7)
  fake.tokens.set('glpat-no-scopes', { self: noScopes })
  fake.tokens.set('glpat-odd-scopes', { self: { ...noScopes, scopes: [1] } })
  fake.tokens.set('oauth-no-route', { self: 401, tokenInfo: 404 })
  fake.tokens.set('oauth-no-scope', { self: 401, tokenInfo: { resource_owner_id: 7 } })
  for (const token of ['glpat-no-scopes', 'glpat-odd-scopes', 'oauth-no-route', 'oauth-no-scope']) {
    assert.deepEqual(await resolver.scopesOf(token), { kind: 'other' }, token)
  }
  fake.tokens.set('oauth-down', { self: 401, tokenInfo: 502 })
  await rejectsWith(resolver.scopesOf('oauth-down'), 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', 503)
  fake.tokens.set('oauth-down', { self: 401, tokenInfo: { resource_owner_id: 7, scope: ['api'] } })
  assert.deepEqual(await resolver.scopesOf('oauth-down'), { kind: 'legacy', scopes: ['api'] }, 'the outage was not kept')
})

test('a 403 from self (GitLab will not describe the token): 403 GRAPHQL_TOKEN_SCOPES_HIDDEN, not kept, never "other"', async t => {
  const { resolver, fake } = await world(t)
  fake.tokens.set('glpat-no-read-self', { self: 403 })
  await rejectsWith(resolver.scopesOf('glpat-no-read-self'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  await rejectsWith(resolver.scopesOf('glpat-no-read-self'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  assert.equal(fake.calls.self, 2, 'the refusal is not cached')
  // The permission granted: the next ask reads the scopes.
  fake.tokens.set('glpat-no-read-self', { self: tokenRecord(43, 7, [{ access: 'user', permissions: ['read_user'] }]) })
  assert.equal((await resolver.scopesOf('glpat-no-read-self')).kind, 'fine_grained')
})

test('cache: a second ask, and concurrent asks, make one GitLab call; another token its own', async t => {
  const { resolver, fake, gitlab } = await world(t)
  const [a, b] = await Promise.all([resolver.scopesOf(FINE), resolver.scopesOf(FINE)])
  assert.deepEqual(a, b)
  await resolver.scopesOf(FINE)
  assert.equal(fake.calls.self, 1)
  await resolver.scopesOf(LEGACY)
  assert.equal(fake.calls.self, 2)
  assert.equal(gitlab.stats()[`${TOKEN_SELF_ENDPOINT}:ok`], 2)
})

test('the cache keeps an answer for its TTL only', async t => {
  let now = 1_000
  const { resolver, fake } = await world(t, { ttlMs: 1_000, clock: { now: () => now } })
  await resolver.scopesOf(FINE)
  now += 999
  await resolver.scopesOf(FINE)
  assert.equal(fake.calls.self, 1)
  now += 2
  await resolver.scopesOf(FINE)
  assert.equal(fake.calls.self, 2)
})

test('GitLab down or answering 5xx: 503 GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE, and the failure is not kept', async t => {
  const { resolver, fake } = await world(t)
  fake.fail.self = 'cut'
  await rejectsWith(resolver.scopesOf(FINE), 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', 503)
  fake.fail.self = { status: 502 }
  await rejectsWith(resolver.scopesOf(FINE), 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', 503)
  fake.fail.self = { status: 429 }
  await rejectsWith(resolver.scopesOf(FINE), 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', 503)
  delete fake.fail.self
  assert.equal((await resolver.scopesOf(FINE)).kind, 'fine_grained')
  // The cut lookup was asked twice (a GET met by a closed connection is asked once more).
  assert.equal(fake.calls.self, 5)
})

test('GitLab unreachable (nothing listening): 503', async t => {
  const gitlab = createGitlabClient({ url: `http://127.0.0.1:${REFUSED_PORT}`, timeoutMs: 2_000 })
  t.after(async () => { await gitlab.close() })
  await rejectsWith(createTokenScopeResolver({ gitlab }).scopesOf(FINE), 'GRAPHQL_TOKEN_LOOKUP_UNAVAILABLE', 503)
})

test('a 200 that is not the expected JSON: 502 GRAPHQL_TOKEN_LOOKUP_INVALID', async t => {
  const { resolver, fake } = await world(t)
  fake.fail.self = 'not_json'
  await rejectsWith(resolver.scopesOf(FINE), 'GRAPHQL_TOKEN_LOOKUP_INVALID', 502)
  delete fake.fail.self
  const bad: Array<[string, unknown]> = [
    ['scopes not a list', { granular_scopes: 'all' }],
    ['unknown access', { granular_scopes: [{ access: 'everything', permissions: [] }] }],
    ['permissions not names', { granular_scopes: [{ access: 'user', permissions: [1] }] }],
    ['selected scope naming nothing', { granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: null, group_id: null }] }],
    ['selected scope naming both', { granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 1, group_id: 2 }] }],
    ['all memberships naming a group', { granular_scopes: [{ access: 'all_memberships', permissions: ['read_project'], group_id: 2 }] }],
    ['id not a number', { granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: '12' }] }]
  ]
  for (const [why, patch] of bad) {
    fake.tokens.set(`glpat-bad-${why}`, { self: { ...tokenRecord(50, 7, []), ...(patch as object) } })
    await rejectsWith(resolver.scopesOf(`glpat-bad-${why}`), 'GRAPHQL_TOKEN_LOOKUP_INVALID', 502)
  }
})

test('older GitLab: self leaves the scopes out, the token\'s id gives them', async t => {
  const { resolver, fake } = await world(t)
  const withScopes = tokenRecord(60, 9, [{ access: 'instance', permissions: ['read_runner'], project_id: null, group_id: null }])
  const { granular_scopes: _, ...withoutScopes } = withScopes
  fake.tokens.set('glpat-older', { self: withoutScopes, byId: withScopes })
  assert.deepEqual(await resolver.scopesOf('glpat-older'), {
    kind: 'fine_grained',
    userId: 9,
    scopes: [{ access: 'instance', permissions: ['read_runner'], projectId: null, groupId: null }]
  })
  assert.equal(fake.calls.by_id, 1)
})

test('a fine-grained token GitLab will not describe: the registration by hash decides, else 403 GRAPHQL_TOKEN_SCOPES_HIDDEN', async t => {
  const registry = createTokenRegistry()
  const { resolver, fake } = await world(t, { registry })
  const { granular_scopes: _, ...withoutScopes } = tokenRecord(70, 11, [])
  fake.tokens.set('glpat-hidden', { self: withoutScopes, byId: 403 })
  fake.tokens.set('glpat-no-read-self', { self: 403 })
  // By id: 403 (no permission), 404 (no such route), a record without scopes: all hidden.
  fake.tokens.set('glpat-hidden-404', { self: withoutScopes })
  fake.tokens.set('glpat-hidden-bare', { self: withoutScopes, byId: withoutScopes })
  fake.tokens.set('glpat-revoked-between', { self: withoutScopes, byId: 401 })
  await rejectsWith(resolver.scopesOf('glpat-hidden'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  await rejectsWith(resolver.scopesOf('glpat-hidden-404'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  await rejectsWith(resolver.scopesOf('glpat-hidden-bare'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  await rejectsWith(resolver.scopesOf('glpat-no-read-self'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  assert.deepEqual(await resolver.scopesOf('glpat-revoked-between'), { kind: 'refused' }, 'GitLab refuses it on the request')

  const put = (token: string, body: unknown): number => handleRegistryRequest(registry, { method: 'PUT', path: `/gate/graphql_token_scopes/${sha256(token)}`, caller: 'operator', body }).status
  assert.equal(put('glpat-hidden', { user_id: 11, granular_scopes: [{ access: 'all_memberships', permissions: ['read_project'] }] }), 200)
  assert.equal(put('glpat-no-read-self', { user_id: 12, granular_scopes: [{ access: 'user', permissions: ['read_user'] }] }), 200)
  // Nothing was kept from the refusals above: the registrations count at once.
  assert.deepEqual(await resolver.scopesOf('glpat-hidden'), { kind: 'fine_grained', userId: 11, scopes: [{ access: 'all_memberships', permissions: ['read_project'], projectId: null, groupId: null }] })
  assert.deepEqual(await resolver.scopesOf('glpat-no-read-self'), { kind: 'fine_grained', userId: 12, scopes: [{ access: 'user', permissions: ['read_user'], projectId: null, groupId: null }] })
  // A token GitLab refuses (401) is not rescued by a registration.
  assert.equal(put('glpat-gone', { granular_scopes: [{ access: 'instance', permissions: ['read_runner'] }] }), 200)
  assert.deepEqual(await resolver.scopesOf('glpat-gone'), { kind: 'refused' })
  // A registration changed or removed counts at once, not when the kept answer expires.
  assert.equal(put('glpat-hidden', { user_id: 11, granular_scopes: [{ access: 'all_memberships', permissions: ['read_issue'] }] }), 200)
  assert.deepEqual(await resolver.scopesOf('glpat-hidden'), { kind: 'fine_grained', userId: 11, scopes: [{ access: 'all_memberships', permissions: ['read_issue'], projectId: null, groupId: null }] })
  assert.equal(handleRegistryRequest(registry, { method: 'DELETE', path: `/gate/graphql_token_scopes/${sha256('glpat-hidden')}`, caller: 'operator' }).status, 204)
  await rejectsWith(resolver.scopesOf('glpat-hidden'), 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 403)
  // GitLab's own answer wins over a registration.
  assert.equal(put(FINE, { granular_scopes: [] }), 200)
  const fromGitlab = await resolver.scopesOf(FINE)
  assert.equal(fromGitlab.kind === 'fine_grained' && fromGitlab.scopes.length, SCOPES.length)
})

test('permission aliases: GitLab names the gate spells differently', async t => {
  const { resolver } = await world(t, { permissionAliases: { read_vulnerability: ['read_vulnerability', 'read_vulnerability_report'] } })
  const scopes = await resolver.scopesOf(FINE)
  assert.equal(scopes.kind, 'fine_grained')
  assert.deepEqual(scopes.kind === 'fine_grained' && scopes.scopes[1]!.permissions, ['read_vulnerability', 'read_vulnerability_report'])
})

test('registry endpoint: operator only, hashes only, validated, kept in its file', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'token-registry-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'registry.json')
  const registry = createTokenRegistry({ file })
  const hash = sha256('glpat-x')
  const path = `/gate/graphql_token_scopes/${hash}`
  const body = { user_id: 3, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], group_id: 5 }] }
  assert.equal(handleRegistryRequest(registry, { method: 'PUT', path, caller: 'none', body }).status, 401)
  const forbidden = handleRegistryRequest(registry, { method: 'PUT', path, caller: 'user', body })
  assert.equal(forbidden.status, 403)
  assert.equal((forbidden.body as { code: string }).code, 'GRAPHQL_TOKEN_REGISTRY_OPERATOR_ONLY')
  // The token itself in the path is refused, and not echoed.
  const raw = handleRegistryRequest(registry, { method: 'PUT', path: '/gate/graphql_token_scopes/glpat-x', caller: 'operator', body })
  assert.equal(raw.status, 400)
  assert.ok(!JSON.stringify(raw.body).includes('glpat-x'))
  const invalid = handleRegistryRequest(registry, { method: 'PUT', path, caller: 'operator', body: { granular_scopes: [{ access: 'selected_memberships', permissions: ['Read Project'] }], token: 'x' } })
  assert.equal(invalid.status, 400)
  assert.deepEqual((invalid.body as { errors: Array<{ field: string }> }).errors.map(e => e.field), ['token', 'granular_scopes[0].permissions', 'granular_scopes[0]'])
  const personal = handleRegistryRequest(registry, { method: 'PUT', path, caller: 'operator', body: { granular_scopes: [{ access: 'personal_projects', permissions: ['read_project'] }] } })
  assert.deepEqual((personal.body as { errors: Array<{ field: string }> }).errors.map(e => e.field), ['user_id'])
  const ok = handleRegistryRequest(registry, { method: 'PUT', path, caller: 'operator', body, now: () => new Date('2026-11-28T10:00:00Z') })
  assert.equal(ok.status, 200)
  assert.deepEqual(handleRegistryRequest(registry, { method: 'GET', path, caller: 'operator' }).body, { token_sha256: hash, user_id: 3, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: null, group_id: 5 }], updated_at: '2026-11-28T10:00:00.000Z' })
  assert.equal((handleRegistryRequest(registry, { method: 'GET', path: '/gate/graphql_token_scopes', caller: 'operator' }).body as unknown[]).length, 1)
  assert.equal(handleRegistryRequest(registry, { method: 'POST', path, caller: 'operator', body }).status, 405)
  // Restart: the file holds the registration.
  assert.deepEqual(createTokenRegistry({ file }).get(hash)?.granular_scopes, [{ access: 'selected_memberships', permissions: ['read_project'], project_id: null, group_id: 5 }])
  assert.ok(!readFileSync(file, 'utf8').includes('glpat-'))
  assert.equal(handleRegistryRequest(registry, { method: 'DELETE', path, caller: 'operator' }).status, 204)
  assert.equal(handleRegistryRequest(registry, { method: 'GET', path, caller: 'operator' }).status, 404)
  assert.equal(createTokenRegistry({ file }).get(hash), undefined)
})
