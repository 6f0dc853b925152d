// The fine-grained token registry kept in GATE_GRAPHQL_TOKEN_REGISTRY_FILE: registrations survive
// a restart; a file that exists but cannot be used stops the start, naming the setting; a missing
// one starts empty and is created (0600, hashes only) on the first change; a file the gate may not
// write is shared read-only, and changes through the API are refused with a stable code.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../../src/config.ts'
import { createTokenRegistry, handleRegistryRequest } from '../../src/graphql/token-registry.ts'
import { postGraphql, startGraphqlGate, type GraphqlGate } from '../helpers/graphql-gate.ts'

const ADMIN = 'gate-operator-secret'
const TOKEN = 'glpat-kept-across-restarts'
const HASH = createHash('sha256').update(TOKEN).digest('hex')
const REGISTRATION = { user_id: 7, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
const READ_LIB = { query: '{ project(fullPath: "acme/lib") { id } }' }

function tempDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'token-registry-file-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function gateWith (t: TestContext, file: string): Promise<GraphqlGate> {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN, GATE_GRAPHQL_TOKEN_REGISTRY_FILE: file } })
  // GitLab will not describe the token: only the registration can.
  g.tokenLookupFails = 403
  return g
}

async function call (g: GraphqlGate, method: string, hash = HASH, body?: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(`${g.url}/api/v4/gate/graphql_token_scopes${hash === '' ? '' : `/${hash}`}`, {
    method,
    headers: { 'private-token': ADMIN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

test('a registration survives a restart; the file is created on the first change, 0600, hashes only', async (t) => {
  const file = join(tempDir(t), 'registry.json')
  const first = await gateWith(t, file)
  assert.equal(existsSync(file), false, 'a missing file starts empty, and is not written before a change')
  assert.equal((await postGraphql(first.url, READ_LIB, { 'private-token': TOKEN })).body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
  assert.equal((await call(first, 'PUT', HASH, REGISTRATION)).status, 200)
  assert.equal(statSync(file).mode & 0o777, 0o600)
  const saved = readFileSync(file, 'utf8')
  assert.ok(saved.includes(HASH))
  assert.ok(!saved.includes(TOKEN), 'never the token')
  await first.gate.close(0)

  const second = await gateWith(t, file)
  assert.deepEqual((await postGraphql(second.url, READ_LIB, { 'private-token': TOKEN })).body, { data: { upstream: true } }, 'the restarted gate reads the registration')
  assert.deepEqual((await call(second, 'GET', '')).body.map((e: { token_sha256: string }) => e.token_sha256), [HASH])
  assert.equal((await call(second, 'DELETE')).status, 204)
  await second.gate.close(0)

  const third = await gateWith(t, file)
  assert.equal((await postGraphql(third.url, READ_LIB, { 'private-token': TOKEN })).body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', 'the deletion was kept too')
})

test('a registry file that exists but cannot be used stops the start, naming the setting', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[string, (file: string) => void, RegExp]> = [
    ['not JSON', file => { writeFileSync(file, '{"half": ') }, /is not JSON/],
    ['empty', file => { writeFileSync(file, '') }, /is not JSON/],
    ['a list', file => { writeFileSync(file, '[]') }, /is not a JSON object/],
    ['a token as a key', file => { writeFileSync(file, JSON.stringify({ [TOKEN]: REGISTRATION })) }, /a key that is not a lower-case hex SHA-256/],
    ['an invalid entry', file => { writeFileSync(file, JSON.stringify({ [HASH]: { granular_scopes: [{ access: 'everything', permissions: [] }] } })) }, new RegExp(`invalid entry ${HASH}: granular_scopes\\[0\\]\\.access must be one of`)],
    ['a directory', file => { mkdirSync(file) }, /cannot read the token registry .*: EISDIR/],
    ['in a directory that does not exist', () => {}, /does not exist, nor does its directory/]
  ]
  for (const [why, make, message] of cases) {
    const file = why.startsWith('in a directory') ? join(dir, 'missing-dir', 'registry.json') : join(dir, `${why.replace(/\W/g, '-')}.json`)
    make(file)
    await assert.rejects(startGraphqlGate(t, { tokens: {}, env: { GATE_GRAPHQL_TOKEN_REGISTRY_FILE: file } }), (err: Error) => {
      assert.ok(err instanceof ConfigError, `${why}: ${String(err)}`)
      assert.match(err.message, /^GATE_GRAPHQL_TOKEN_REGISTRY_FILE: /, why)
      assert.match(err.message, message, why)
      assert.ok(!err.message.includes(TOKEN), `${why}: a token in the file is not echoed`)
      return true
    })
  }
})

test('a read-only registry file (a mounted Secret): its registrations count, API changes are refused and the file is untouched', async (t) => {
  const file = join(tempDir(t), 'registry.json')
  writeFileSync(file, JSON.stringify({ [HASH]: REGISTRATION }))
  chmodSync(file, 0o444)
  const before = readFileSync(file, 'utf8')
  const g = await gateWith(t, file)
  assert.ok(g.logs.some(l => l.read_only === true && l.registrations === 1), 'the start says the registry is read-only')
  assert.deepEqual((await postGraphql(g.url, READ_LIB, { 'private-token': TOKEN })).body, { data: { upstream: true } })
  assert.equal((await call(g, 'GET')).status, 200)
  const other = createHash('sha256').update('glpat-another').digest('hex')
  for (const [method, hash] of [['PUT', other], ['PUT', HASH], ['DELETE', HASH], ['DELETE', other]] as const) {
    const refused = await call(g, method, hash, method === 'PUT' ? REGISTRATION : undefined)
    assert.equal(refused.status, 403, `${method}`)
    assert.equal(refused.body.code, 'GRAPHQL_TOKEN_REGISTRY_READ_ONLY', `${method}`)
    assert.match(refused.body.message, /GATE_GRAPHQL_TOKEN_REGISTRY_FILE/)
  }
  assert.equal(readFileSync(file, 'utf8'), before)
  assert.deepEqual((await postGraphql(g.url, READ_LIB, { 'private-token': TOKEN })).body, { data: { upstream: true } }, 'the registration still counts')
})

test('a write that fails changes nothing: 500 GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED, the registry as it was', (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'sub', 'registry.json')
  mkdirSync(join(dir, 'sub'))
  const registry = createTokenRegistry({ file })
  let changes = 0
  registry.onChange(() => { changes++ })
  assert.equal(registry.readOnly, false)
  // The directory goes away under the gate: the next save cannot be written.
  rmSync(join(dir, 'sub'), { recursive: true })
  assert.throws(() => handleRegistryRequest(registry, { method: 'PUT', path: `/gate/graphql_token_scopes/${HASH}`, caller: 'operator', body: REGISTRATION }), (err: Error & { code?: string, status?: number }) => {
    assert.equal(err.code, 'GRAPHQL_TOKEN_REGISTRY_WRITE_FAILED')
    assert.equal(err.status, 500)
    return true
  })
  assert.equal(registry.get(HASH), undefined, 'not in memory either')
  assert.equal(changes, 0)
})
