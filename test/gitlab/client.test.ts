// The GitLab client under the identity stage and the configuration API: what it sends, what it
// reads, and how it counts calls by endpoint and outcome.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGitlabClient, GitlabUnavailable } from '../../src/gitlab/client.ts'

async function startGitlab (answer: (path: string, headers: IncomingHttpHeaders) => { status: number, body: string }): Promise<{ url: string, close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const { status, body } = answer(req.url ?? '', req.headers)
    res.writeHead(status, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) } }
}

test('sends the caller\'s credential or the service token under the base path, and reads JSON objects', async (t) => {
  const seen: Array<{ path: string, token: string | undefined }> = []
  const gitlab = await startGitlab((path, headers) => {
    seen.push({ path, token: (headers['private-token'] ?? headers['job-token']) as string | undefined })
    return path.endsWith('/array') ? { status: 200, body: '[1]' } : { status: 200, body: '{"id":1}' }
  })
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url + '/gitlab/', serviceToken: 'svc' })
  t.after(() => client.close())
  assert.deepEqual(await client.get('/api/v4/job', { endpoint: 'job', as: { 'job-token': 'glcbt-x' } }), { status: 200, body: { id: 1 } })
  assert.deepEqual(await client.get('/api/v4/projects/1', { endpoint: 'project', as: 'service' }), { status: 200, body: { id: 1 } })
  assert.deepEqual(await client.get('/api/v4/array', { endpoint: 'project', as: 'service' }), { status: 200, body: undefined })
  assert.deepEqual(seen, [
    { path: '/gitlab/api/v4/job', token: 'glcbt-x' },
    { path: '/gitlab/api/v4/projects/1', token: 'svc' },
    { path: '/gitlab/api/v4/array', token: 'svc' }
  ])
  assert.deepEqual(client.stats(), { 'job:ok': 1, 'project:ok': 1, 'project:failed': 1 })
  assert.equal(client.hasServiceToken, true)
  await assert.rejects(createGitlabClient({ url: gitlab.url }).get('/api/v4/user', { endpoint: 'user', as: 'service' }), /GATE_SERVICE_TOKEN/)
})

test('outcomes: a refused caller is rejected, a refused service token failed, 429 and 5xx unavailable', async (t) => {
  let status = 401
  const gitlab = await startGitlab(() => ({ status, body: '{}' }))
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, serviceToken: 'svc' })
  t.after(() => client.close())
  const user = { endpoint: 'user', as: { 'private-token': 'u' } }
  assert.equal((await client.get('/api/v4/user', user)).status, 401)
  assert.equal((await client.get('/api/v4/projects/1', { endpoint: 'project', as: 'service' })).status, 401)
  status = 404
  assert.equal((await client.get('/api/v4/user', user)).body, undefined)
  status = 429
  await client.get('/api/v4/user', user)
  status = 502
  await client.get('/api/v4/user', user)
  assert.deepEqual(client.stats(), { 'user:rejected': 1, 'project:failed': 1, 'user:failed': 1, 'user:unavailable': 2 })
})

test('no answer, a timeout or a body over the limit rejects with GitlabUnavailable, counted unavailable', async (t) => {
  const gitlab = await startGitlab(() => ({ status: 200, body: JSON.stringify({ blob: 'x'.repeat(2000) }) }))
  t.after(() => gitlab.close())
  const client = createGitlabClient({ url: gitlab.url, maxResponseBytes: 1000 })
  t.after(() => client.close())
  const call = { endpoint: 'user', as: { 'private-token': 'u' } }
  await assert.rejects(client.get('/api/v4/user', call), (err: unknown) => err instanceof GitlabUnavailable && err.reason === 'RESPONSE_TOO_LARGE')
  const down = createGitlabClient({ url: 'http://127.0.0.1:1', timeoutMs: 500 })
  t.after(() => down.close())
  await assert.rejects(down.get('/api/v4/user', call), (err: unknown) => err instanceof GitlabUnavailable && err.reason === 'ECONNREFUSED')
  assert.deepEqual(client.stats(), { 'user:unavailable': 1 })
  assert.deepEqual(down.stats(), { 'user:unavailable': 1 })
})

test('a URL that is not http(s) stops the start', () => {
  assert.throws(() => createGitlabClient({ url: 'not a url' }), /not a URL/)
  assert.throws(() => createGitlabClient({ url: 'ftp://gitlab' }), /http\(s\)/)
})
