// The GitLab client under the identity stage, the configuration API and the project lookups: where
// it sends, what it reads (objects, paginated lists), and how it counts calls by endpoint and outcome.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { createGitlabClient as createAdminLookups } from '../../src/admin/auth.ts'
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

test('GitLab that does not answer in time rejects with GitlabUnavailable named TimeoutError, not a DOMException\'s number', { timeout: 10_000 }, async (t) => {
  const silent = createServer(() => { /* never answers */ })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.after(async () => { silent.closeAllConnections(); await new Promise(resolve => silent.close(resolve)) })
  const client = createGitlabClient({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, timeoutMs: 100 })
  t.after(() => client.close())
  await assert.rejects(client.get('/api/v4/user', { endpoint: 'user', as: { 'private-token': 'u' } }), (err: unknown) => err instanceof GitlabUnavailable && err.reason === 'TimeoutError')
  assert.deepEqual(client.stats(), { 'user:unavailable': 1 })
})

test('a URL that is not http(s) stops the start', () => {
  assert.throws(() => createGitlabClient({ url: 'not a url' }), /not a URL/)
  assert.throws(() => createGitlabClient({ url: 'ftp://gitlab' }), /http\(s\)/)
})

test('the API is at <upstream URL><relative URL root>: both paths kept, in that order', async (t) => {
  const seen: string[] = []
  const gitlab = await startGitlab(path => { seen.push(path); return { status: 200, body: '{"id":1}' } })
  t.after(() => gitlab.close())
  for (const [url, relativeUrlRoot] of [[gitlab.url, '/gitlab'], [gitlab.url + '/base/', '/gitlab'], [gitlab.url + '/base', ''], [gitlab.url + '/', '']] as const) {
    const client = createGitlabClient({ url, relativeUrlRoot })
    t.after(() => client.close())
    await client.get('/api/v4/user', { endpoint: 'user', as: { 'private-token': 'u' } })
  }
  assert.deepEqual(seen, ['/gitlab/api/v4/user', '/base/gitlab/api/v4/user', '/base/api/v4/user', '/api/v4/user'])
  for (const bad of ['gitlab', '/gitlab/']) assert.throws(() => createGitlabClient({ url: gitlab.url, relativeUrlRoot: bad }), /relative URL root/)
})

/** A GitLab whose `/api/v4/items` lists ids 1..total, `per_page` at a time, paginated as `style` says. */
async function startPaginated (t: { after: (fn: () => Promise<void>) => void }, total: number, style: 'offset' | 'keyset' | 'none') {
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(req.url ?? '')
    const url = new URL(req.url ?? '/', 'http://gitlab')
    const perPage = Number(url.searchParams.get('per_page') ?? '20')
    const start = style === 'keyset' ? Number(url.searchParams.get('id_after') ?? '0') : (Number(url.searchParams.get('page') ?? '1') - 1) * perPage
    const ids = Array.from({ length: Math.max(0, Math.min(perPage, total - start)) }, (_, i) => start + i + 1)
    const more = start + ids.length < total
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (style === 'offset') {
      const page = Number(url.searchParams.get('page') ?? '1')
      headers['x-next-page'] = more ? String(page + 1) : ''
      headers['x-page'] = String(page)
    } else if (style === 'keyset' && more) {
      // GitLab names its external URL, which need not be the one the gate calls.
      headers.link = `<https://gitlab.example.com/api/v4/items?id_after=${start + ids.length}&pagination=keyset&per_page=${perPage}>; rel="next"`
    }
    res.writeHead(200, headers).end(JSON.stringify(ids.map(id => ({ id }))))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

test('getList follows X-Next-Page, keeps the query, and counts each page', async (t) => {
  const gitlab = await startPaginated(t, 250, 'offset')
  const client = createGitlabClient({ url: gitlab.url + '/base', relativeUrlRoot: '/gitlab', serviceToken: 'svc' })
  t.after(() => client.close())
  const list = await client.getList('/api/v4/items?order_by=id', { endpoint: 'items', as: 'service' })
  assert.equal(list.status, 200)
  assert.equal(list.truncated, false)
  assert.deepEqual(list.items?.map(i => i.id), Array.from({ length: 250 }, (_, i) => i + 1))
  assert.deepEqual(gitlab.seen, [
    '/base/gitlab/api/v4/items?order_by=id&per_page=100',
    '/base/gitlab/api/v4/items?order_by=id&per_page=100&page=2',
    '/base/gitlab/api/v4/items?order_by=id&per_page=100&page=3'
  ])
  assert.deepEqual(client.stats(), { 'items:ok': 3 })
  // get() of the same endpoint keeps its signature and reads no list.
  assert.deepEqual(await client.get('/api/v4/items', { endpoint: 'items', as: 'service' }), { status: 200, body: undefined })
})

test('getList follows Link rel="next" (keyset pagination) on the same endpoint, whatever host the link names', async (t) => {
  const gitlab = await startPaginated(t, 150, 'keyset')
  const client = createGitlabClient({ url: gitlab.url, serviceToken: 'svc' })
  t.after(() => client.close())
  const list = await client.getList('/api/v4/items?pagination=keyset', { endpoint: 'items', as: 'service' })
  assert.deepEqual(list.items?.map(i => i.id), Array.from({ length: 150 }, (_, i) => i + 1))
  assert.deepEqual(gitlab.seen, [
    '/api/v4/items?pagination=keyset&per_page=100',
    '/api/v4/items?id_after=100&pagination=keyset&per_page=100'
  ])
})

test('getList stops at maxPages (truncated), and a list it cannot read whole has no items', async (t) => {
  const offset = await startPaginated(t, 1000, 'offset')
  const client = createGitlabClient({ url: offset.url, serviceToken: 'svc' })
  t.after(() => client.close())
  const first = await client.getList('/api/v4/items', { endpoint: 'items', as: 'service' }, { maxPages: 2 })
  assert.deepEqual([first.status, first.truncated, first.items?.length], [200, true, 200])
  assert.equal(offset.seen.length, 2)

  const single = await startPaginated(t, 3, 'none')
  const one = createGitlabClient({ url: single.url, serviceToken: 'svc' })
  t.after(() => one.close())
  assert.deepEqual(await one.getList('/api/v4/items', { endpoint: 'items', as: 'service' }), { status: 200, items: [{ id: 1 }, { id: 2 }, { id: 3 }], truncated: false })

  let next = 'x'
  let status = 200
  let body = '[{"id":1}]'
  const odd = await startGitlab(() => ({ status, body }))
  t.after(() => odd.close())
  const server = createServer((_req, res) => { res.writeHead(200, { 'x-next-page': next }).end('[{"id":1}]') })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  const bad = createGitlabClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, serviceToken: 'svc' })
  t.after(() => bad.close())
  assert.deepEqual(await bad.getList('/api/v4/items', { endpoint: 'items', as: 'service' }), { status: 200, items: undefined, truncated: false }, 'an X-Next-Page that is not a page number')
  next = ''
  assert.deepEqual((await bad.getList('/api/v4/items', { endpoint: 'items', as: 'service' })).items, [{ id: 1 }])

  const lists = createGitlabClient({ url: odd.url, serviceToken: 'svc' })
  t.after(() => lists.close())
  body = '{"id":1}'
  assert.deepEqual(await lists.getList('/api/v4/items', { endpoint: 'items', as: 'service' }), { status: 200, items: undefined, truncated: false }, 'an object is not a list')
  status = 404
  assert.deepEqual(await lists.getList('/api/v4/items', { endpoint: 'items', as: 'service' }), { status: 404, items: undefined, truncated: false })
  assert.deepEqual(lists.stats(), { 'items:failed': 2 })
})

test('the configuration API finds groups by full path through the client: as the caller or the service token, counted as group_by_path', async (t) => {
  const seen: Array<{ path: string, token: unknown }> = []
  let status = 200
  const gitlab = await startGitlab((path, headers) => {
    seen.push({ path, token: headers['private-token'] })
    return { status, body: status === 200 ? '{"id":12,"full_path":"Acme/Platform"}' : '{"message":"404 Group Not Found"}' }
  })
  t.after(() => gitlab.close())
  const api = createGitlabClient({ url: gitlab.url, relativeUrlRoot: '/gitlab', serviceToken: 'svc' })
  t.after(() => api.close())
  const lookups = createAdminLookups({ client: api })
  assert.equal(lookups.hasServiceToken, true)
  assert.deepEqual(await lookups.group('acme/platform', { 'private-token': 'glpat-u' }), { kind: 'found', id: 12, path: 'Acme/Platform' })
  assert.deepEqual(await lookups.group('acme/platform', 'service'), { kind: 'found', id: 12, path: 'Acme/Platform' })
  status = 404
  assert.deepEqual(await lookups.group('acme/platform', { 'private-token': 'glpat-u' }), { kind: 'not_found' })
  status = 500
  assert.equal((await lookups.group('acme/platform', { 'private-token': 'glpat-u' })).kind, 'unavailable')
  assert.deepEqual(seen.map(s => s.path), Array(4).fill('/gitlab/api/v4/groups/acme%2Fplatform?with_projects=false'))
  assert.deepEqual(seen.map(s => s.token), ['glpat-u', 'svc', 'glpat-u', 'glpat-u'])
  assert.deepEqual(api.stats(), { 'group_by_path:ok': 2, 'group_by_path:failed': 1, 'group_by_path:unavailable': 1 })
})

test('answers of the wrong shape: a redirect elsewhere is not followed, an HTML page is no object, a body that never ends is cut at the timeout', { timeout: 20_000 }, async (t) => {
  // Another host, which must never see the request nor the token.
  const elsewhere: string[] = []
  const other = await startGitlab((path, headers) => { elsewhere.push(`${path} ${String(headers['private-token'])}`); return { status: 200, body: '{"id":5}' } })
  t.after(() => other.close())
  const sockets: Socket[] = []
  const gitlab = createNetServer(socket => {
    sockets.push(socket)
    socket.on('error', () => {})
    socket.once('data', (head: Buffer) => {
      const path = head.toString('latin1').split(' ')[1]
      if (path === '/api/v4/projects/1') socket.write(`HTTP/1.1 302 Found\r\nLocation: ${other.url}/api/v4/projects/5\r\nContent-Length: 0\r\n\r\n`)
      else if (path === '/api/v4/projects/2') socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>{}</html>')
      else socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n')
    })
  })
  await new Promise<void>(resolve => gitlab.listen(0, '127.0.0.1', resolve))
  t.after(() => { for (const s of sockets) s.destroy(); gitlab.close() })
  const client = createGitlabClient({ url: `http://127.0.0.1:${(gitlab.address() as AddressInfo).port}`, serviceToken: 'svc', timeoutMs: 500 })
  t.after(() => client.close())
  const call = { endpoint: 'project', as: 'service' } as const
  assert.deepEqual(await client.get('/api/v4/projects/1', call), { status: 302, body: undefined, location: `${other.url}/api/v4/projects/5` })
  assert.deepEqual(elsewhere, [], 'the redirect was not followed')
  assert.deepEqual(await client.get('/api/v4/projects/2', call), { status: 200, body: undefined })
  // One byte, then nothing: the call's one timeout covers the body too.
  await assert.rejects(client.get('/api/v4/projects/3', call), (err: unknown) => err instanceof GitlabUnavailable && err.reason === 'TimeoutError')
  assert.deepEqual(client.stats(), { 'project:failed': 2, 'project:unavailable': 1 })
})

test('a GET on a kept-alive connection GitLab closes as the call arrives is asked once more on a new one; a POST is not, and a GET only once more', async (t) => {
  // GitLab's side closes a kept-alive connection as a call arrives on it (its idle timeout ran out
  // as the call left, or while the gate's event loop was held): with a FIN, or a reset.
  for (const close of ['end', 'reset'] as const) {
    const requests: string[] = []
    let connections = 0
    /** Connections whose every call GitLab drops; otherwise only a connection's second call. */
    let dropEvery = false
    const sockets: Socket[] = []
    const gitlab = createNetServer(socket => {
      sockets.push(socket)
      socket.on('error', () => {})
      const connection = ++connections
      let calls = 0
      socket.on('data', (chunk: Buffer) => {
        const line = /^(GET|POST) (\S+)/m.exec(chunk.toString('latin1'))
        if (line === null) return
        requests.push(`${connection} ${line[1]!} ${line[2]!}`)
        if (dropEvery || ++calls === 2) {
          if (close === 'end') socket.destroy()
          else socket.resetAndDestroy()
          return
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\nKeep-Alive: timeout=60\r\n\r\n{"id":1}')
      })
    })
    await new Promise<void>(resolve => gitlab.listen(0, '127.0.0.1', resolve))
    const client = createGitlabClient({ url: `http://127.0.0.1:${(gitlab.address() as AddressInfo).port}`, serviceToken: 'svc' })
    t.after(async () => {
      await client.close()
      for (const s of sockets) s.destroy()
      await new Promise(resolve => gitlab.close(resolve))
    })
    const call = { endpoint: 'project', as: 'service' } as const
    assert.deepEqual(await client.get('/api/v4/projects/1', call), { status: 200, body: { id: 1 } }, close)
    // The pool takes the connection back once the answer is done: the next call goes on it.
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(await client.get('/api/v4/projects/2', call), { status: 200, body: { id: 1 } }, `${close}: asked again on a new connection`)
    assert.deepEqual(requests, ['1 GET /api/v4/projects/1', '1 GET /api/v4/projects/2', '2 GET /api/v4/projects/2'], close)
    // Connection 2 has answered once: its next call, a POST, is closed under it and not asked again.
    await new Promise(resolve => setImmediate(resolve))
    await assert.rejects(client.post!('/api/graphql', { query: '{x}' }, { endpoint: 'graphql', as: 'service' }), GitlabUnavailable, close)
    assert.deepEqual(requests.slice(3), ['2 POST /api/graphql'], `${close}: the POST was sent once`)
    dropEvery = true
    await assert.rejects(client.get('/api/v4/projects/3', call), GitlabUnavailable, close)
    assert.deepEqual(requests.slice(4).map(r => r.slice(r.indexOf(' ') + 1)), ['GET /api/v4/projects/3', 'GET /api/v4/projects/3'], `${close}: a GET is asked twice at most`)
    assert.deepEqual(client.stats(), { 'project:ok': 2, 'project:unavailable': 1, 'graphql:unavailable': 1 }, `${close}: counted once per call`)
  }
})

test('a call waiting for a connection whose caller gives up leaves the queue at once, never sent', { timeout: 20_000 }, async (t) => {
  const arrived: string[] = []
  const held: Array<() => void> = []
  const gitlab = createServer((req, res) => {
    arrived.push(req.url ?? '')
    const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":1}') }
    if (req.url === '/api/v4/projects/1') held.push(answer)
    else answer()
  })
  await new Promise<void>(resolve => gitlab.listen(0, '127.0.0.1', resolve))
  t.after(async () => { gitlab.closeAllConnections(); await new Promise(resolve => gitlab.close(resolve)) })
  const client = createGitlabClient({ url: `http://127.0.0.1:${(gitlab.address() as AddressInfo).port}`, serviceToken: 'svc', connections: 1, timeoutMs: 60_000 })
  t.after(() => client.close())
  const call = { endpoint: 'project', as: 'service' } as const
  // GitLab holds the one connection: the second call waits for it, and its caller leaves.
  const first = client.get('/api/v4/projects/1', call)
  while (held.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  const leaving = new AbortController()
  const second = client.get('/api/v4/projects/2', { ...call, signal: leaving.signal })
  const third = client.get('/api/v4/projects/3', call)
  leaving.abort()
  // Answered while GitLab still holds the first call: it never waited for the connection.
  await assert.rejects(second, (err: unknown) => err instanceof GitlabUnavailable && err.reason === 'cancelled')
  assert.deepEqual(arrived, ['/api/v4/projects/1'])
  held[0]!()
  assert.deepEqual(await first, { status: 200, body: { id: 1 } })
  assert.deepEqual(await third, { status: 200, body: { id: 1 } })
  assert.deepEqual(arrived, ['/api/v4/projects/1', '/api/v4/projects/3'], 'the call given up was never sent')
  assert.deepEqual(client.stats(), { 'project:cancelled': 1, 'project:ok': 2 })
})

test('a call sent whose caller gives up is given up: its connection closed, no answer read', { timeout: 20_000 }, async (t) => {
  const closed: Array<Promise<void>> = []
  const gitlab = createServer((req) => { closed.push(new Promise(resolve => req.socket.once('close', () => { resolve() }))) })
  await new Promise<void>(resolve => gitlab.listen(0, '127.0.0.1', resolve))
  t.after(async () => { gitlab.closeAllConnections(); await new Promise(resolve => gitlab.close(resolve)) })
  const client = createGitlabClient({ url: `http://127.0.0.1:${(gitlab.address() as AddressInfo).port}`, serviceToken: 'svc', timeoutMs: 60_000 })
  t.after(() => client.close())
  const leaving = new AbortController()
  const call = client.get('/api/v4/job', { endpoint: 'job', as: { 'job-token': 'glcbt-x' }, signal: leaving.signal })
  while (closed.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  leaving.abort()
  await assert.rejects(call, (err: unknown) => err instanceof GitlabUnavailable && err.reason === 'cancelled')
  await closed[0]
  assert.deepEqual(client.stats(), { 'job:cancelled': 1 })
})
