// Finding: the token registry's answer to a registration it refuses named each unknown field as
// the body wrote it, unquoted: a token sent as a field name (the token itself where its SHA-256
// goes, in the body of `PUT /gate/graphql_token_scopes/:sha256`) was answered whole, where every
// other answer of the configuration API quotes field names (short, a token `[token]`). Field
// names are quoted here too now, at the top level and in each scope.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startGraphqlGate } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'

const ADMIN = 'operator-token-of-twenty-characters'
const PAT = 'glpat-registeredbymistake01'
const HASH = 'ab'.repeat(32)

test('a token given as a field name of a registration is answered [token]', async t => {
  const g = await startGraphqlGate(t, { tokens: {}, env: { GATE_ADMIN_TOKEN: ADMIN } })
  const res = await send(g.url, 'PUT', `/api/v4/gate/graphql_token_scopes/${HASH}`, { 'private-token': ADMIN, 'content-type': 'application/json' },
    JSON.stringify({ [PAT]: true, user_id: 7, granular_scopes: [{ access: 'user', permissions: ['read_project'], [`x${'y'.repeat(300)}`]: 1, [PAT]: 1 }] }))
  assert.equal(res.status, 400, res.text)
  assert.ok(!res.text.includes('registeredbymistake'), res.text)
  assert.deepEqual(res.json().errors.map((e: { field: string }) => e.field), ['[token]', `granular_scopes[0].x${'y'.repeat(99)}... (301 characters)`, 'granular_scopes[0].[token]'])
  assert.ok(!g.logs.map(l => JSON.stringify(l)).join('\n').includes('registeredbymistake'))
})
