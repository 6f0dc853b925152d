// Finding: a GraphQL document hands one variable to each of its aliased mutations, and the gate's
// allowlist mutations each read the whole of a `jobTokenPolicies` (or `packageRegistry`) list to
// validate it: 150 aliased `ciJobTokenScopeUpdatePolicies` naming one variable of 200,000 policy
// names (825 KB, within the 300 fields a document may select) took 21 s of CPU, from any
// Maintainer of a project (any user, of a project of their own). A list longer than there are
// policies (formats) names one twice or one that is none: it is refused whole now, unread, over
// GraphQL and REST.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'

/** Items that `fn` reads from arrays of 1,000 or more through forEach, map and their iterators. */
async function itemsRead (fn: () => Promise<void>): Promise<number> {
  const proto = Array.prototype as unknown as Record<string | symbol, (...args: unknown[]) => unknown>
  const names = ['forEach', 'map', Symbol.iterator] as const
  const originals = names.map(name => proto[name]!)
  let count = 0
  names.forEach((name, i) => {
    const original = originals[i]!
    proto[name] = function (this: unknown[], ...args: unknown[]) {
      if (this.length >= 1000) count += this.length
      return original.apply(this, args)
    }
  })
  try {
    await fn()
  } finally {
    names.forEach((name, i) => { proto[name] = originals[i]! })
  }
  return count
}

/** GitLab shows no group of the target's path: the target is the project. */
function noGroups (_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' })
  res.end('{"message":"404 Group Not Found"}')
}

// A Maintainer of acme/lib (200) who sees acme/platform/app (100), an entry of its allowlist.
const lead = { 'private-token': USERS.lead, 'content-type': 'application/json' }
const ALIASES = 30
const N = 100_000
const FORMATS = 50_000

test('admin lists: aliased policy updates naming one long variable read it once, and each refuses it whole', async t => {
  const g = await adminGate(t)
  g.respond = noGroups
  const fields = Array.from({ length: ALIASES }, (_, i) => `a${i}: ciJobTokenScopeUpdatePolicies(input: {projectPath: "acme/lib", targetPath: "acme/platform/app", defaultPermissions: false, jobTokenPolicies: $p}) { errors }`)
  const body = JSON.stringify({ query: `mutation($p: [CiJobTokenScopePolicies!]!) { ${fields.join(' ')} }`, variables: { p: Array(N).fill('x') } })
  let answer: Awaited<ReturnType<typeof send>> | undefined
  const read = await itemsRead(async () => { answer = await send(g.url, 'POST', '/api/graphql', lead, body) })
  assert.equal(answer!.status, 200, answer!.text.slice(0, 300))
  // GraphQL's coercion of the variable reads it; each of the 30 mutations read it twice more.
  assert.ok(read < 5 * N, `${read} items read`)
  const data = answer!.json().data as Record<string, { errors: string[] }>
  assert.equal(Object.keys(data).length, ALIASES)
  for (const payload of Object.values(data)) assert.deepEqual(payload.errors, [`jobTokenPolicies lists ${N} policies; there are 20 job token policies, each listed at most once`])
  assert.deepEqual((await g.store.get(200))?.entries.find(e => e.targetId === 100)?.jobTokenPolicies, ['read_packages'], 'nothing written')
})

test('admin lists: aliased package rule updates naming one long variable read it once', async t => {
  const g = await adminGate(t)
  const fields = Array.from({ length: ALIASES }, (_, i) => `a${i}: updateJobTokenPermissions(input: {projectPath: "acme/lib", packageRegistry: $r}) { errors }`)
  const body = JSON.stringify({ query: `mutation($r: [PackageFormatPermissionsInput!]!) { ${fields.join(' ')} }`, variables: { r: Array(FORMATS).fill({ format: 'x' }) } })
  let answer: Awaited<ReturnType<typeof send>> | undefined
  const read = await itemsRead(async () => { answer = await send(g.url, 'POST', '/api/graphql', lead, body) })
  assert.equal(answer!.status, 200, answer!.text.slice(0, 300))
  assert.ok(read < 5 * FORMATS, `${read} items read`)
  const data = answer!.json().data as Record<string, { errors: string[] }>
  assert.equal(Object.keys(data).length, ALIASES, answer!.text.slice(0, 300))
  for (const payload of Object.values(data)) assert.match(payload.errors[0]!, new RegExp(`^packageRegistry lists ${FORMATS} package formats; there are \\d+, each listed at most once$`))
  assert.equal((await g.store.get(200))?.packageRules, undefined, 'nothing written')
})

test('admin lists: a REST list of more policies than there are is one problem', async t => {
  const g = await adminGate(t)
  const res = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', { ...lead, 'private-token': USERS.maintainer },
    JSON.stringify({ target_project_id: 300, default_permissions: false, job_token_policies: Array(21).fill('read_jobs') }))
  assert.equal(res.status, 400, res.text)
  assert.deepEqual(res.json().errors, [{ field: 'job_token_policies', message: 'lists 21 policies; there are 20 job token policies, each listed at most once' }])
})
