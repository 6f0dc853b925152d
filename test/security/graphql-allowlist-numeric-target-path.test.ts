// Regression: the gate's GraphQL allowlist mutations take their target by full path, as GitLab's
// do (`targetPath`, `targetGroupPath`): a path of digits is the top-level group of that path. The
// gate looked a group path up with `GET /groups/:path`, which reads digits as an id: a Maintainer
// adding `targetPath: "20"` (a group named "20") allowlisted the group whose id is 20, an
// unrelated group, and `ciJobTokenScopeRemoveGroup(targetGroupPath: "20")` removed its entry.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { send } from '../helpers/http.ts'
import { ADMIN, adminGate } from '../helpers/admin-gate.ts'

// The fake GitLab answers `GET /groups/<digits>` by id (the operator's lookups go with the service
// token); by path, as here, for the rest.
const GROUPS = [{ id: 10, full_path: 'acme' }, { id: 20, full_path: 'other' }]

function answerGroups (req: IncomingMessage, res: ServerResponse): void {
  const m = /^\/api\/v4\/groups\/([^/?]+)/.exec(req.url ?? '')
  if (m !== null && req.method === 'GET') {
    const key = decodeURIComponent(m[1]!)
    const group = GROUPS.find(g => g.full_path === key.toLowerCase())
    res.writeHead(group === undefined ? 404 : 200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(group ?? { message: '404 Group Not Found' }))
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ upstream: true, data: {} }))
}

const json = { 'content-type': 'application/json', 'private-token': ADMIN }
const gql = (query: string): string => JSON.stringify({ query })

test('a targetPath of digits is the group of that path, not the group of that id', async (t) => {
  const g = await adminGate(t)
  g.respond = answerGroups
  const groups = async (): Promise<number[]> => ((await g.store.get(200))?.entries ?? []).filter(e => e.targetType === 'group').map(e => e.targetId).sort((a, b) => a - b)
  const before = await groups()
  // "20" names no group by its path: nothing is added (group 20 is `other`). A group really named
  // with digits cannot be told from the id by GitLab's groups API: not found, never another group.
  const add = await send(g.url, 'POST', '/api/graphql', json, gql('mutation { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "20"}) { errors } }'))
  assert.deepEqual(add.json().data.ciJobTokenScopeAddGroupOrProject.errors, ['targetPath "20" is not a group or project the caller can see'], add.text)
  assert.deepEqual(await groups(), before)
  // The group named "10" does not exist either; group 10 (`acme`, allowlisted) keeps its entry.
  const remove = await send(g.url, 'POST', '/api/graphql', json, gql('mutation { ciJobTokenScopeRemoveGroup(input: {projectPath: "acme/lib", targetGroupPath: "10"}) { errors } }'))
  assert.deepEqual(remove.json().data.ciJobTokenScopeRemoveGroup.errors, ['targetGroupPath "10" is not a group the caller can see'], remove.text)
  assert.deepEqual(await groups(), before)
  // A group named by its path is found as before.
  const named = await send(g.url, 'POST', '/api/graphql', json, gql('mutation { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "other"}) { errors } }'))
  assert.deepEqual(named.json().data.ciJobTokenScopeAddGroupOrProject.errors, [], named.text)
  assert.deepEqual(await groups(), [...before, 20].sort((a, b) => a - b))
})
