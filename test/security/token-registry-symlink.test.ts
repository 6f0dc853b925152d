// Finding: a writable GATE_GRAPHQL_TOKEN_REGISTRY_FILE that was a symbolic link was replaced on the
// first change by a file of the gate's own beside the link (the save renamed its temporary file
// over the path, link and all). What the link named kept the old registrations: a gate whose link
// sat on storage that does not outlive it brought a removed registration back on its next start,
// and a second gate reaching the same file through a link of its own never saw it written, so a
// registration removed through one gate still let the token's GraphQL requests through the other.
// Changes are now saved to the file the link names, and the link stays.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postGraphql, startGraphqlGate, type GraphqlGate } from '../helpers/graphql-gate.ts'

const ADMIN = 'gate-operator-secret-of-the-registry-link-test'
const TOKEN = 'glpat-registered-through-a-link'
const HASH = createHash('sha256').update(TOKEN).digest('hex')
const REGISTRATION = { user_id: 7, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
const READ_LIB = { query: '{ project(fullPath: "acme/lib") { id } }' }

async function gateOn (t: TestContext, file: string): Promise<GraphqlGate> {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN, GATE_GRAPHQL_TOKEN_REGISTRY_FILE: file } })
  g.tokenLookupFails = 403
  return g
}

const remove = async (g: GraphqlGate): Promise<number> =>
  (await fetch(`${g.url}/api/v4/gate/graphql_token_scopes/${HASH}`, { method: 'DELETE', headers: { 'private-token': ADMIN } })).status

/** The registry on its volume, naming TOKEN, and a link to it in each of `links` directories. */
function linkedRegistry (t: TestContext, links: number): { file: string, linked: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'token-registry-link-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'volume'))
  const file = join(dir, 'volume', 'registry.json')
  writeFileSync(file, JSON.stringify({ [HASH]: REGISTRATION }), { mode: 0o600 })
  const linked: string[] = []
  for (let i = 0; i < links; i++) {
    mkdirSync(join(dir, `gate-${i}`))
    const link = join(dir, `gate-${i}`, 'registry.json')
    symlinkSync(join('..', 'volume', 'registry.json'), link)
    linked.push(link)
  }
  return { file, linked }
}

test('a registration removed through a linked registry file is gone from the file the link names', async t => {
  const { file, linked: [link] } = linkedRegistry(t, 1)
  const gate = await gateOn(t, link!)
  assert.equal(await remove(gate), 204)
  assert.ok(lstatSync(link!).isSymbolicLink(), 'the link stays a link')
  assert.ok(!readFileSync(file, 'utf8').includes(HASH), 'the removal is in the file the link names')
})

test('a gate sees another gate write the registry file both reach through links of their own', async t => {
  const { linked: [first, second] } = linkedRegistry(t, 2)
  const one = await gateOn(t, first!)
  const other = await gateOn(t, second!)
  assert.equal(await remove(one), 204)
  assert.equal((await postGraphql(other.url, READ_LIB, { 'private-token': TOKEN })).body.code, 'GRAPHQL_TOKEN_SCOPES_HIDDEN')
})
