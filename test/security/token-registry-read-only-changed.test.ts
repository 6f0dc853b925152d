// Finding: a read-only GATE_GRAPHQL_TOKEN_REGISTRY_FILE (a mounted Secret, a file without its
// owner's write bit) was read once, at start, and never looked at again: the check of another
// process's write left it out. The registrations are changed there by changing the file (the
// Secret, which the kubelet swaps in; another gate that may write the volume), and a registration
// removed or narrowed so went on letting the token's GraphQL requests through with the
// permissions it no longer has, for as long as the gate ran, the scopes cached from it included.
// A read-only file is now looked at as a writable one is: once another process changed it, the
// gate answers no registration (hidden tokens are refused, GRAPHQL_TOKEN_SCOPES_HIDDEN) until it
// is restarted and reads the file anew.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postGraphql, startGraphqlGate, type GraphqlGate } from '../helpers/graphql-gate.ts'
import { createTokenRegistry } from '../../src/graphql/token-registry.ts'

const ADMIN = 'gate-operator-secret-of-the-read-only-registry-test'
const TOKEN = 'glpat-registered-in-the-secret'
const HASH = createHash('sha256').update(TOKEN).digest('hex')
const REGISTRATION = { user_id: 7, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
const READ_LIB = { query: '{ project(fullPath: "acme/lib") { id } }' }

async function gateOn (t: TestContext, file: string): Promise<GraphqlGate> {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN, GATE_GRAPHQL_TOKEN_REGISTRY_FILE: file } })
  // GitLab will not describe the token: only the registration can.
  g.tokenLookupFails = 403
  return g
}

/** A Secret volume as the kubelet writes one: `registry.json` -> `..data/registry.json`, `..data` -> a directory of the version. */
function secretVolume (t: TestContext, registrations: Record<string, unknown>): { file: string, update: (next: Record<string, unknown>) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'token-registry-secret-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  let version = 0
  const write = (next: Record<string, unknown>): string => {
    const at = join(dir, `..v${++version}`)
    mkdirSync(at)
    writeFileSync(join(at, 'registry.json'), JSON.stringify(next))
    chmodSync(join(at, 'registry.json'), 0o444)
    return `..v${version}`
  }
  symlinkSync(write(registrations), join(dir, '..data'))
  symlinkSync(join('..data', 'registry.json'), join(dir, 'registry.json'))
  return {
    file: join(dir, 'registry.json'),
    update (next) {
      // The kubelet's swap: a new version's directory, then `..data` renamed to point at it.
      symlinkSync(write(next), join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
    }
  }
}

test('a registration removed from a read-only registry file is not honoured by a gate that read it before', async t => {
  const secret = secretVolume(t, { [HASH]: REGISTRATION })
  assert.equal(createTokenRegistry({ file: secret.file }).readOnly, true)
  const g = await gateOn(t, secret.file)
  const before = await postGraphql(g.url, READ_LIB, { 'private-token': TOKEN })
  assert.notEqual(before.body?.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', JSON.stringify(before.body))
  // The Secret changes: the registration is removed.
  secret.update({})
  const after = await postGraphql(g.url, READ_LIB, { 'private-token': TOKEN })
  assert.equal(after.body?.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', JSON.stringify(after.body))
  // Changes stay refused as read-only; a gate started now reads the file as it is.
  const g2 = await gateOn(t, secret.file)
  assert.equal((await postGraphql(g2.url, READ_LIB, { 'private-token': TOKEN })).body?.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
})

test('a read-only registry file left as it was keeps answering', async t => {
  const secret = secretVolume(t, { [HASH]: REGISTRATION })
  const g = await gateOn(t, secret.file)
  for (let i = 0; i < 3; i++) {
    const res = await postGraphql(g.url, READ_LIB, { 'private-token': TOKEN })
    assert.notEqual(res.body?.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN', JSON.stringify(res.body))
  }
})
