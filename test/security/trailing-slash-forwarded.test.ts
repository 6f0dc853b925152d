// Regression: the proxy sent GitLab the canonical path without the trailing `/` the client sent.
// Grape ignores a trailing slash, so the route decided is the same either way, but Workhorse, in
// front of Rails, picks its upload handler by the path as sent (its cleaned path keeps the
// trailing slash; workhorse/internal/upstream/routes.go): `PUT /api/v4/projects/:id/packages/nuget/`,
// which `dotnet nuget push` and `nuget push` send (the PackagePublish URL with a slash appended),
// is its NuGet multipart upload, while `.../packages/nuget` is no upload route and reaches Rails
// as a raw multipart body, which refuses the push (`package` is no Workhorse-uploaded file). Every
// NuGet push through the gate as a proxy failed. The trailing slash is now sent on as received.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

// .NET's MultipartFormDataContent: a quoted GUID boundary and RFC 5987 filename*.
const BOUNDARY = '8d2a1c5e-0b4e-4f3b-9c1a-2f6b8f1d0a11'
const NUPKG = `--${BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name=package; filename=package.nupkg; filename*=utf-8''package.nupkg\r\n\r\nPK\x03\x04nupkg\r\n--${BOUNDARY}--\r\n`

test('dotnet nuget push reaches GitLab with its trailing slash, as Workhorse routes it', async t => {
  const g = await startTestGate(t)
  const push = await send(g.url, 'PUT', '/api/v4/projects/200/packages/nuget/', {
    'x-nuget-apikey': TOKENS.lib,
    'content-type': `multipart/form-data; boundary="${BOUNDARY}"`
  }, NUPKG)
  assert.equal(push.status, 200, push.text)
  assert.equal(g.seen.at(-1)!.url, '/api/v4/projects/200/packages/nuget/')
  assert.equal(g.seen.at(-1)!.bytes, Buffer.byteLength(NUPKG))
  // Still decided as the push route: a project that allowlists nobody refuses it.
  const other = await send(g.url, 'PUT', '/api/v4/projects/300/packages/nuget/', { 'x-nuget-apikey': TOKENS.lib, 'content-type': `multipart/form-data; boundary="${BOUNDARY}"` }, NUPKG)
  assert.equal(other.status, 403, other.text)
  assert.equal(other.json().code, 'NOT_ALLOWLISTED')
})

test('the trailing slash is kept, the rest of the canonical form is not changed', async t => {
  const g = await startTestGate(t)
  for (const [sent, forwarded] of [
    ['/api/v4/projects/200/packages/pypi/simple/hello/', '/api/v4/projects/200/packages/pypi/simple/hello/'],
    ['/api/v4/projects/200/packages/pypi/simple/hello//?a=1', '/api/v4/projects/200/packages/pypi/simple/hello/?a=1'],
    ['//api//v4/projects/200//packages/pypi/simple/hello', '/api/v4/projects/200/packages/pypi/simple/hello'],
    ['/api/v4/projects/200/packages/pypi/simple/h%65llo/', '/api/v4/projects/200/packages/pypi/simple/hello/']
  ] as const) {
    const res = await send(g.url, 'GET', sent, { 'job-token': TOKENS.lib })
    assert.equal(res.status, 200, `${sent}: ${res.text}`)
    assert.equal(g.seen.at(-1)!.url, forwarded, sent)
  }
  // Outside the API too (git over HTTP, the UI): Workhorse and Rails see what the client sent.
  assert.equal((await send(g.url, 'GET', '/acme/lib/')).status, 200)
  assert.equal(g.seen.at(-1)!.url, '/acme/lib/')
})
