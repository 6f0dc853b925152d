// Finding: a fine-grained token's GraphQL refusal names its target and operation as the document
// wrote them, and answered a token pasted there whole: a token given as `fullPath` ("The project
// acme/glpat-... was not found.", and the `target` extension), as a global ID's model, or as
// `operationName` ("no operation named ...", and the `operationName` extension), where the log
// line of the same refusal wrote `[token]`. The answer is what a job's log prints. A token-shaped
// target, operation name or quoted document text is answered `[token]` now, as it is logged.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { postGraphql, startGraphqlGate } from '../helpers/graphql-gate.ts'

const PAT = 'glpat-pastedintoadocument01'
const JWT = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"project_path:acme/app"}').toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`

test('a token pasted into a GraphQL document is answered [token] in a fine-grained refusal', async t => {
  const g = await startGraphqlGate(t, { tokens: { 'glpat-fine': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] } } })
  const asked: Array<[unknown, string]> = [
    [{ query: `{ project(fullPath: "acme/${PAT}") { id } }` }, 'GRAPHQL_PERMISSION_MISSING'],
    [{ query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: JWT } }, 'GRAPHQL_PERMISSION_MISSING'],
    [{ query: `mutation { vulnerabilityConfirm(input: {id: "gid://gitlab/${PAT}/1"}) { errors } }` }, 'GRAPHQL_PERMISSION_MISSING'],
    [{ query: '{ project(fullPath: "acme/lib") { id } }', operationName: PAT }, 'GRAPHQL_OPERATION_NOT_FOUND'],
    [{ query: `query ${'q'} { project(fullPath: "acme/lib") { id } }`, operationName: JWT }, 'GRAPHQL_OPERATION_NOT_FOUND'],
    [[{ query: '{ project(fullPath: "acme/lib") { id } }', operationName: PAT }, { query: '{ project(fullPath: "other/tools") { id } }', operationName: `x-${JWT}` }], 'GRAPHQL_OPERATION_NOT_FOUND']
  ]
  const answers: string[] = []
  for (const [body, code] of asked) {
    const res = await postGraphql(g.url, body, { 'private-token': 'glpat-fine' })
    const first = Array.isArray(res.body) ? res.body[0] : res.body
    assert.equal(first.errors[0].extensions.code, code, res.text)
    answers.push(res.text)
  }
  const text = answers.join('\n')
  for (const secret of [PAT, 'pastedintoadocument', 'eyJ']) assert.ok(!text.includes(secret), `an answer holds ${secret}: ${text}`)
  const first = JSON.parse(answers[0]!)
  assert.equal(first.errors[0].extensions.target, 'project acme/[token]')
  assert.match(first.errors[0].message, /The project acme\/\[token\] was not found\./)
  const named = JSON.parse(answers[3]!)
  assert.equal(named.errors[0].extensions.operationName, '[token]')
  assert.match(named.errors[0].message, /no operation named "\[token\]"/)
  // A name of no token's shape is answered as written.
  const res = await postGraphql(g.url, { query: '{ project(fullPath: "acme/lib") { id } }', operationName: 'Other' }, { 'private-token': 'glpat-fine' })
  assert.equal(res.body.errors[0].extensions.operationName, 'Other')
})
