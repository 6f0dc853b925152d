// Finding: the configuration API's validation names every problem of a request, and its answer
// listed them all. A 1 MiB body holds half a million (`"job_token_policies": [1,1,...]`, unknown
// package formats, unknown fields), so one Maintainer's request (any user's, of a project of
// their own) was answered with 35 MB, over REST and in a GraphQL mutation's `errors`; a client
// that did not read its answers had the gate hold each of them until the client timeout (20 such
// requests grew the gate by 2.6 GB). An answer holds 100 entries at most now: the first 99
// problems, then how many more there were.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GateError } from '../../src/errors.ts'
import { adminGate, USERS } from '../helpers/admin-gate.ts'
import { send, type RawResponse } from '../helpers/http.ts'

const maintainer = { 'private-token': USERS.maintainer, 'content-type': 'application/json' }
/** Entries an answer's problems hold (src/errors.ts MAX_LISTED_ISSUES): 99 listed, one naming the rest. */
const MAX_LISTED_ISSUES = 100
const SHOWN = MAX_LISTED_ISSUES - 1

/** A refusal of `count` problems: the first listed, then one naming the rest; a small answer. */
function boundedRefusal (res: RawResponse, count: number, first: string, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.text.slice(0, 300)}`)
  assert.ok(res.text.length < 64 * 1024, `${what}: an answer of ${res.text.length} bytes`)
  const errors = res.json().errors as Array<{ field: string, message: string }>
  assert.equal(errors.length, MAX_LISTED_ISSUES, what)
  assert.equal(errors[0]!.field, first, what)
  assert.deepEqual(errors.at(-1), { field: '', message: `and ${count - SHOWN} more problems, not listed` }, what)
}

test('admin validation: 80,000 unknown package formats, or unknown fields, are answered with the first 99 problems and a count', async t => {
  // The fake GitLab answering the role lookups shares this process with the gate reading 80,000
  // fields: on a loaded machine its answer came after the default 5 s (a 502). A hang detector here.
  const g = await adminGate(t, { GATE_IDENTITY_TIMEOUT_MS: '60000' })
  const formats = Array.from({ length: 80_000 }, (_, i) => `"f${i.toString(36)}":{}`)
  const patch = await send(g.url, 'PATCH', '/api/v4/projects/200/job_token_permissions', maintainer, `{"package_registry":{${formats.join(',')}}}`)
  boundedRefusal(patch, formats.length, 'package_registry.f0', 'PATCH job_token_permissions')
  const fields = Array.from({ length: 80_000 }, (_, i) => `"x${i.toString(36)}":0`)
  const post = await send(g.url, 'POST', '/api/v4/projects/200/job_token_scope/allowlist', maintainer, `{"target_project_id":300,${fields.join(',')}}`)
  boundedRefusal(post, fields.length, 'x0', 'POST allowlist with unknown fields')
  assert.equal((await g.store.readAudit(200, { offset: 0, limit: 10 })).total, 0, 'nothing audited')
})

test('admin validation: problems cut once stay cut as they were when handed to another error', () => {
  // service.ts answers a store's refusal (GrantsValidationError) with the API's, from its issues.
  const issues = Array.from({ length: 250 }, (_, i) => ({ path: `f${i}`, message: 'is bad' }))
  const store = new GateError('GRANTS_INVALID', undefined, { issues })
  const api = new GateError('ADMIN_VALIDATION_FAILED', undefined, { issues: store.issues })
  assert.equal(api.issues.length, MAX_LISTED_ISSUES)
  assert.deepEqual(api.issues.at(-1), { path: '', message: `and ${250 - SHOWN} more problems, not listed` })
})
