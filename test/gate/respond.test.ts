// respond(): the one writer of the gate's JSON answers. Status, message and code come from the
// errors table; every error answer carries the request id, a 503 says when to retry.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AdminError } from '../../src/admin/service.ts'
import { errors, GateError } from '../../src/errors.ts'
import { denyOf } from '../../src/gate/pipeline.ts'
import { respond } from '../../src/gate/respond.ts'
import { GrantsStoreUnavailableError } from '../../src/grants/errors.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { send, type RawResponse } from '../helpers/http.ts'

/** Serves one answer written by `write`, and returns what a client received. */
async function answered (t: TestContext, write: (res: ServerResponse) => void): Promise<RawResponse> {
  const server = createServer((_req, res) => { write(res) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  return await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET', '/')
}

test('a code of the table: its status and message, the code, the request id; Retry-After on a 503', async (t) => {
  const res = await answered(t, r => { respond(r, 'req-503', 'GATE_SHUTTING_DOWN', true) })
  assert.equal(res.status, 503)
  assert.deepEqual(res.json(), { message: errors.GATE_SHUTTING_DOWN.message, code: 'GATE_SHUTTING_DOWN', request_id: 'req-503' })
  assert.equal(res.headers['x-request-id'], 'req-503')
  assert.equal(res.headers['retry-after'], '5')
  assert.equal(res.headers.connection, 'close')
  assert.equal(res.headers['content-type'], 'application/json')
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text))

  const internal = await answered(t, r => { respond(r, 'req-500', 'GATE_INTERNAL_ERROR') })
  assert.equal(internal.status, 500)
  assert.equal(internal.json().request_id, 'req-500')
  assert.equal(internal.headers['retry-after'], undefined, 'only a 503 says when to retry')
  assert.notEqual(internal.headers.connection, 'close')
})

test('a deny: its own message and headers', async (t) => {
  const deny = denyOf('TOKEN_UNKNOWN', { message: '401 Unauthorized - try again', headers: { 'www-authenticate': 'Basic realm="x"' } })
  const res = await answered(t, r => { respond(r, 'req-401', deny) })
  assert.equal(res.status, 401)
  assert.deepEqual(res.json(), { message: '401 Unauthorized - try again', code: 'TOKEN_UNKNOWN', request_id: 'req-401' })
  assert.equal(res.headers['www-authenticate'], 'Basic realm="x"')
})

test('a JSON answer without a request id (the health listener)', async (t) => {
  const res = await answered(t, r => { respond(r, null, { kind: 'json', status: 503, body: { status: 'failed' }, headers: { 'x-extra': '1' } }) })
  assert.equal(res.status, 503)
  assert.deepEqual(res.json(), { status: 'failed' })
  assert.equal(res.headers['x-request-id'], undefined)
  assert.equal(res.headers['retry-after'], undefined, 'not an error of the table')
  assert.equal(res.headers['x-extra'], '1')
})

test('once headers are sent nothing more is answered: the connection is cut', async (t) => {
  await assert.rejects(answered(t, r => {
    r.writeHead(200, { 'content-length': '100' })
    r.write('partial')
    respond(r, 'req-late', 'UPSTREAM_UNAVAILABLE')
  }))
})

test('one error type: every GateError answers its table status and public message, never its log message', async (t) => {
  const admin = new AdminError('ADMIN_METHOD_NOT_ALLOWED', undefined, [{ path: 'enabled', message: 'is missing' }], { allow: 'OPTIONS, GET' })
  const identity = new IdentityError('IDENTITY_UPSTREAM_UNAVAILABLE', 'GET /api/v4/job failed: ECONNREFUSED 10.1.2.3:8181')
  const grants = new GrantsStoreUnavailableError('cannot reach Redis (single): ECONNREFUSED 10.9.9.9:6379')
  for (const err of [admin, identity, grants]) assert.ok(err instanceof GateError, err.name)

  const refused = await answered(t, r => { respond(r, 'req-405', admin) })
  assert.equal(refused.status, 405)
  assert.equal(refused.headers.allow, 'OPTIONS, GET')
  assert.deepEqual(refused.json(), { message: errors.ADMIN_METHOD_NOT_ALLOWED.message, code: 'ADMIN_METHOD_NOT_ALLOWED', errors: [{ field: 'enabled', message: 'is missing' }], request_id: 'req-405' })

  for (const [err, status] of [[identity, 503], [grants, 503]] as const) {
    const res = await answered(t, r => { respond(r, 'req-x', err) })
    assert.equal(res.status, status)
    assert.deepEqual(res.json(), { message: errors[err.code].message, code: err.code, request_id: 'req-x' })
    assert.ok(!res.text.includes('ECONNREFUSED'), 'the cause stays in the logs')
    assert.equal(res.headers['retry-after'], '5')
  }
})

test('a JSON answer without a body (204): no content type, nothing written', async (t) => {
  const res = await answered(t, r => { respond(r, 'req-204', { kind: 'json', status: 204, body: undefined, headers: { allow: 'GET' } }) })
  assert.equal(res.status, 204)
  assert.equal(res.text, '')
  assert.equal(res.headers['content-type'], undefined)
  assert.equal(res.headers['x-request-id'], 'req-204')
  assert.equal(res.headers.allow, 'GET')
})
