// The forward-auth endpoint runs the same stages: a Conan upload through the instance API is
// decided for the project its username names there too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { projectsGate } from './world.ts'

test('forward-auth: the project of an instance route is found and decided', async t => {
  const g = await projectsGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const ask = (token: string): ReturnType<typeof send> => send(auth, 'GET', '/', {
    'x-original-method': 'PUT', 'x-original-uri': '/api/v4/packages/conan/v1/files/pkg/1.0/acme+registry/stable/0/export/conanfile.py',
    'content-type': 'application/octet-stream', 'x-original-content-length': '6', 'job-token': token
  })
  const refused = await ask(TOKENS.app)
  assert.equal(refused.status, 403, refused.text)
  assert.equal(refused.json().code, 'NOT_ALLOWLISTED')
  assert.equal((await ask(TOKENS.tools)).status, 200)
})
