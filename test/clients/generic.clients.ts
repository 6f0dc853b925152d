// curl and generic packages through the gate as GitLab's docs show them in CI jobs:
// `curl --upload-file` with a `JOB-TOKEN` header (a large file: curl sends
// `Expect: 100-continue` and waits; from stdin it is also chunked), and downloads with the
// `JOB-TOKEN` header or `gitlab-ci-token` Basic credentials, with the four kinds of job token;
// and a download GitLab redirects to object storage.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { JOBS, MISSING_ADMIN_PACKAGES, NOT_ALLOWLISTED, PROJECT, assertDenied, assertFailed, assertOk, requireClient, run, startRegistryGate, tempDir, upstreamWrites } from './support.ts'

const MIB = 1 << 20
const SIZE = 48 * MIB

/** A file of `size` random bytes, written in pieces; its sha256. */
async function bigFile (path: string, size: number): Promise<string> {
  const hash = createHash('sha256')
  const out = createWriteStream(path)
  for (let written = 0; written < size; written += MIB) {
    const piece = randomBytes(Math.min(MIB, size - written))
    // curl sends no Content-Type, and a body that starts as a JSON object (`{`, `/`) is read as JSON.
    if (written === 0) piece[0] = 0x42
    hash.update(piece)
    if (!out.write(piece)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  return hash.digest('hex')
}

test('curl: generic packages upload and download with the job token', async t => {
  if (!requireClient(t, 'curl', ['curl', '--version'], 'install Debian\'s curl')) return
  const root = tempDir(t, 'curl')
  const rg = await startRegistryGate(t)
  const big = join(root, 'big.bin')
  const bigSha = await bigFile(big, SIZE)
  const url = (file: string): string => `${rg.api}/projects/${PROJECT}/packages/generic/hello/1.0.0/${file}`
  const upload = (token: string, file: string, from: 'file' | 'stdin'): Promise<Awaited<ReturnType<typeof run>>> =>
    run('curl', ['-v', '--fail-with-body', '--silent', '--show-error', '--upload-file', from === 'file' ? big : '-', '--header', `JOB-TOKEN: ${token}`, url(file)], from === 'stdin' ? { stdin: big } : {})

  await t.test('upload: the project itself (a large file, then chunked from stdin) and an allowlisted project', async () => {
    for (const [kind, file, from] of [['self', 'big.bin', 'file'], ['self', 'piped.bin', 'stdin'], ['withPolicy', 'other.bin', 'file']] as const) {
      const result = await upload(JOBS[kind], file, from)
      assertOk(result, `curl --upload-file (${kind}, ${from})`)
      assert.match(result.stdout, /201 Created/)
      assert.match(result.stderr, /> Expect: 100-continue/i, 'curl asked before sending the body')
      assert.match(result.stderr, /< HTTP\/1\.1 100 Continue/, 'and the gate let it go on')
      if (from === 'stdin') assert.match(result.stderr, /> Transfer-Encoding: chunked/i)
      const stored = rg.gate.seen.find(s => s.method === 'PUT' && s.url.endsWith(`/${file}`))
      assert.equal(stored?.bytes, SIZE, `${file}: every byte reached the registry`)
      assert.equal(stored?.sha256, bigSha)
    }
  })

  await t.test('upload refused before the body: read_packages only, and not allowlisted', async () => {
    const before = upstreamWrites(rg.gate).length
    for (const [kind, message] of [['readOnly', MISSING_ADMIN_PACKAGES], ['notAllowlisted', NOT_ALLOWLISTED]] as const) {
      for (const from of ['file', 'stdin'] as const) {
        const result = await upload(JOBS[kind], 'refused.bin', from)
        assertFailed(result, `curl --upload-file (${kind}, ${from})`)
        assert.ok(result.stdout.includes(message), `curl prints GitLab's message:\n${result.output}`)
        assert.match(result.stderr, /curl: \(22\) The requested URL returned error: 403/)
        assert.doesNotMatch(result.stderr, /100 Continue/, 'refused before the body was asked for')
      }
    }
    assert.equal(upstreamWrites(rg.gate).length, before, 'nothing written upstream')
    assertDenied(rg.gate, 'PUT', 'put_projects_id_packages_generic_package_name_package_version_path_file_name', 'MISSING_POLICIES', 'admin_packages')
  })

  await t.test('download with JOB-TOKEN and with Basic: the project itself and allowlisted projects; refused when not allowlisted', async () => {
    const content = Buffer.from('a small generic package\n')
    rg.registry.seedFile(PROJECT, 'generic', 'hello/1.0.0/small.txt', content)
    const auths = (token: string): string[][] => [['--header', `JOB-TOKEN: ${token}`], ['--user', `gitlab-ci-token:${token}`]]
    for (const kind of ['self', 'withPolicy', 'readOnly'] as const) {
      for (const auth of auths(JOBS[kind])) {
        const out = join(root, `small-${kind}-${auth[0]!.slice(2)}.txt`)
        assertOk(await run('curl', ['--fail-with-body', '--silent', '--show-error', ...auth, '--output', out, url('small.txt')]), `curl download (${kind}, ${auth[0]!})`)
        assert.deepEqual(readFileSync(out), content)
      }
    }
    for (const auth of auths(JOBS.notAllowlisted)) {
      const result = await run('curl', ['--fail-with-body', '--silent', '--show-error', ...auth, url('small.txt')])
      assertFailed(result, `curl download (not allowlisted, ${auth[0]!})`)
      assert.ok(result.stdout.includes(NOT_ALLOWLISTED), result.output)
      assert.match(result.stderr, /curl: \(22\) The requested URL returned error: 403/)
    }
    assertDenied(rg.gate, 'GET', 'get_projects_id_packages_generic_package_name_package_version_path_file_name', 'NOT_ALLOWLISTED')
  })

  await t.test('a download GitLab redirects to object storage: the gate passes the redirect on, curl -L follows it', async () => {
    const stored = Buffer.from('from object storage\n')
    const storage = createServer((req, res) => { res.writeHead(200, { 'content-length': stored.length }).end(stored) })
    await new Promise<void>(resolve => storage.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>(resolve => { storage.closeAllConnections(); storage.close(() => { resolve() }) }))
    const location = `http://127.0.0.1:${(storage.address() as AddressInfo).port}/bucket/stored.bin?X-Amz-Signature=abc`
    rg.registry.redirects.set(`${PROJECT}/generic/hello/1.0.0/stored.bin`, location)
    const out = join(root, 'stored.bin')
    const result = await run('curl', ['-v', '--location', '--fail-with-body', '--silent', '--show-error', '--header', `JOB-TOKEN: ${JOBS.readOnly}`, '--output', out, url('stored.bin')])
    assertOk(result, 'curl -L (read_packages)')
    assert.match(result.stderr, /< HTTP\/1\.1 302/)
    assert.ok(result.stderr.toLowerCase().includes(`< location: ${location.toLowerCase()}`), 'the Location header unchanged')
    assert.deepEqual(readFileSync(out), stored)
    const refused = await run('curl', ['--location', '--fail-with-body', '--silent', '--show-error', '--header', `JOB-TOKEN: ${JOBS.notAllowlisted}`, url('stored.bin')])
    assertFailed(refused, 'curl -L (not allowlisted)')
    assert.ok(refused.stdout.includes(NOT_ALLOWLISTED), refused.output)
  })
})
