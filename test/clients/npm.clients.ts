// npm through the gate as GitLab's docs set it up in a CI job: the scope's registry at the
// project's npm endpoint and the job token as `_authToken` (sent as Bearer) in .npmrc. Install of
// a scoped package (metadata, then the tarball at the absolute URL the registry answers), publish
// (PUT with the tarball attached), and dist-tag add/rm, with the four kinds of job token; and
// install through the instance-level registry, where the gate finds the project by the name.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { JOBS, PROJECT, assertDenied, assertFailed, assertOk, requireClient, run, startRegistryGate, tempDir, upstreamWrites, type RegistryGate } from './support.ts'

const NAME = '@acme/hello'

function packageDir (root: string, version: string): string {
  const dir = join(root, `pkg-${version}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: NAME, version, main: 'index.js' }))
  writeFileSync(join(dir, 'index.js'), `module.exports = '${version}'\n`)
  return dir
}

/** A job's working directory with the .npmrc GitLab's docs give, and its own npm cache. */
function job (rg: RegistryGate, root: string, name: string, token: string, registry = `${rg.api}/projects/${PROJECT}/packages/npm/`): { cwd: string, env: Record<string, string> } {
  const cwd = join(root, name)
  mkdirSync(cwd, { recursive: true })
  writeFileSync(join(cwd, '.npmrc'), [
    `@acme:registry=${registry}`,
    `${registry.replace(/^http:/, '')}:_authToken=${token}`,
    // Anything unscoped would go to a closed port, never to the network.
    'registry=http://127.0.0.1:9/',
    'audit=false', 'fund=false', 'update-notifier=false', ''
  ].join('\n'))
  writeFileSync(join(cwd, 'package.json'), JSON.stringify({ name: `job-${name}`, version: '0.0.0', private: true }))
  return { cwd, env: { npm_config_cache: join(cwd, '.npm-cache'), npm_config_userconfig: join(cwd, '.npmrc-user') } }
}

test('npm: install, publish and dist-tag through the gate with the job token in .npmrc', async t => {
  if (!requireClient(t, 'npm', ['npm', '--version'], 'it comes with Node.js')) return
  const root = tempDir(t, 'npm')
  const rg = await startRegistryGate(t)
  const packed = await run('npm', ['pack', '--pack-destination', root], { cwd: packageDir(root, '1.0.0'), env: { npm_config_cache: join(root, '.npm-cache') } })
  assertOk(packed, 'npm pack')
  rg.registry.seedNpm(PROJECT, NAME, '1.0.0', readFileSync(join(root, 'acme-hello-1.0.0.tgz')))

  await t.test('install of a scoped package: the project itself, and allowlisted projects that may read', async () => {
    await Promise.all((['self', 'withPolicy', 'readOnly'] as const).map(async kind => {
      const j = job(rg, root, `install-${kind}`, JOBS[kind])
      assertOk(await run('npm', ['install', `${NAME}@1.0.0`], j), `npm install (${kind})`)
      const installed = JSON.parse(readFileSync(join(j.cwd, 'node_modules/@acme/hello/package.json'), 'utf8')) as { version: string }
      assert.equal(installed.version, '1.0.0')
    }))
    const tarballs = rg.gate.seen.filter(s => s.method === 'GET' && s.url.endsWith('/-/@acme/hello-1.0.0.tgz'))
    assert.equal(tarballs.length, 3, 'each tarball came through the gate, at the URL the metadata gave')
  })

  await t.test('install through the instance-level registry: the gate finds the project from the package name', async () => {
    // What GitLab's package list answers for the lookup (GET /groups/acme/packages).
    rg.gate.gitlab.packages.push({ id: 1, name: NAME, version: '1.0.0', packageType: 'npm', projectId: PROJECT, createdAt: '2026-01-01T00:00:00Z' })
    const results = await Promise.all((['self', 'readOnly', 'notAllowlisted'] as const).map(async kind => {
      const j = job(rg, root, `instance-${kind}`, JOBS[kind], `${rg.api}/packages/npm/`)
      return { kind, j, result: await run('npm', ['install', `${NAME}@1.0.0`], j) }
    }))
    for (const { kind, j, result } of results) {
      if (kind === 'notAllowlisted') {
        assertFailed(result, 'npm install (instance, not allowlisted)')
        assert.match(result.output, /npm (?:ERR!|error) code E403/)
        assert.match(result.output, /403 Forbidden - GET http:\/\/127\.0\.0\.1:\d+\/api\/v4\/packages\/npm\/@acme%2fhello/)
      } else {
        assertOk(result, `npm install (instance, ${kind})`)
        assert.ok(existsSync(join(j.cwd, 'node_modules/@acme/hello/package.json')))
      }
    }
    assertDenied(rg.gate, 'GET', 'get_packages_npm_package_name', 'NOT_ALLOWLISTED')
  })

  await t.test('install refused for a project not on the allowlist: npm shows E403', async () => {
    const j = job(rg, root, 'install-notAllowlisted', JOBS.notAllowlisted)
    const result = await run('npm', ['install', `${NAME}@1.0.0`], j)
    assertFailed(result, 'npm install (not allowlisted)')
    assert.match(result.output, /npm (?:ERR!|error) code E403/)
    assert.match(result.output, /403 Forbidden - GET http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/200\/packages\/npm\/@acme%2fhello/)
  })

  await t.test('publish: the project itself and an allowlisted project with admin_packages', async () => {
    // One after the other: npm 11 reads the versions published so far to pick the tag.
    for (const [kind, version] of [['self', '1.0.1'], ['withPolicy', '1.0.2']] as const) {
      const j = job(rg, root, `publish-${kind}`, JOBS[kind])
      assertOk(await run('npm', ['publish', packageDir(j.cwd, version)], j), `npm publish (${kind})`)
      assert.ok(rg.registry.files.has(`${PROJECT}/npm/${NAME}/-/${NAME}-${version}.tgz`), `${version} stored`)
    }
    assert.deepEqual(rg.registry.writes.map(w => `${w.method} ${w.path}`), [`PUT ${NAME}`, `PUT ${NAME}`])
  })

  // npm publish sends the tarball base64-encoded inside a JSON body, and GitLab reads top-level
  // JSON members as parameters (a `job_token` among them): the gate reads JSON bodies whole up to
  // GATE_MAX_INSPECTED_BODY_BYTES (64 KiB) and streams larger ones through the JSON guard
  // (src/identity/json-guard.ts), so a package of any size is published through the gate.
  await t.test('publish of a package over 64 KiB', async () => {
    const j = job(rg, root, 'publish-large', JOBS.self)
    // A prerelease below every other version: npm 11 refuses to publish a version below the
    // highest one without --tag, which the later cases publish.
    const dir = packageDir(j.cwd, '1.0.0-large.0')
    writeFileSync(join(dir, 'data.bin'), randomBytes(100 * 1024))
    const result = await run('npm', ['publish', '--tag', 'large', dir], j)
    assertOk(result, 'npm publish of a 100 KiB package')
    assert.ok(rg.registry.files.has(`${PROJECT}/npm/${NAME}/-/${NAME}-1.0.0-large.0.tgz`))
  })

  await t.test('publish refused: read_packages only (the decision log names admin_packages), and not allowlisted', async () => {
    const before = upstreamWrites(rg.gate).length
    const results = await Promise.all(([['readOnly', '1.0.3'], ['notAllowlisted', '1.0.4']] as const).map(async ([kind, version]) => {
      const j = job(rg, root, `publish-${kind}`, JOBS[kind])
      return { kind, result: await run('npm', ['publish', packageDir(j.cwd, version)], j) }
    }))
    for (const { kind, result } of results) {
      assertFailed(result, `npm publish (${kind})`)
      assert.match(result.output, /npm (?:ERR!|error) code E403/)
      assert.match(result.output, /403 Forbidden - PUT http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/200\/packages\/npm\/@acme%2fhello/)
      // npm prints a refusal's `error` field (never `message`): the gate says GitLab's message
      // there too on npm routes, so the user sees the permission or the allowlist refusal.
      assert.match(result.output, kind === 'readOnly'
        ? /The following token permission is required: admin_packages/
        : /Authentication by CI\/CD job token not allowed from /)
    }
    assertDenied(rg.gate, 'PUT', 'put_projects_id_packages_npm_package_name', 'MISSING_POLICIES', 'admin_packages')
    assertDenied(rg.gate, 'PUT', 'put_projects_id_packages_npm_package_name', 'NOT_ALLOWLISTED')
    assert.equal(upstreamWrites(rg.gate).length, before, 'nothing written upstream')
    assert.equal(rg.registry.npm.get(`${PROJECT}/${NAME}`)?.versions['1.0.3'], undefined)
  })

  await t.test('dist-tag add and rm: the project itself; refused for read_packages only and not allowlisted', async () => {
    const self = job(rg, root, 'tags-self', JOBS.self)
    assertOk(await run('npm', ['dist-tag', 'add', `${NAME}@1.0.0`, 'stable'], self), 'npm dist-tag add')
    assert.equal(rg.registry.npm.get(`${PROJECT}/${NAME}`)?.['dist-tags'].stable, '1.0.0')
    const listed = await run('npm', ['dist-tag', 'ls', NAME], self)
    assertOk(listed, 'npm dist-tag ls')
    assert.match(listed.stdout, /stable: 1\.0\.0/)

    const before = upstreamWrites(rg.gate).length
    const refusals = (['readOnly', 'notAllowlisted'] as const).flatMap(kind => [['add', `${NAME}@1.0.1`, 'stable'], ['rm', NAME, 'stable']].map(args => ({ kind, args })))
    await Promise.all(refusals.map(async ({ kind, args }) => {
      const result = await run('npm', ['dist-tag', ...args], job(rg, root, `tags-${kind}-${args[0]!}`, JOBS[kind]))
      assertFailed(result, `npm dist-tag ${args[0]!} (${kind})`)
      assert.match(result.output, /npm (?:ERR!|error) code E403/)
      // npm reads the tags first: refused there when not allowlisted, at the change for read_packages only.
      const refused = kind === 'notAllowlisted' ? 'GET' : args[0] === 'add' ? 'PUT' : 'DELETE'
      // The refused request's line, then GitLab's message from the body's `error` field.
      const message = kind === 'notAllowlisted' ? 'Authentication by CI/CD job token not allowed from tools to lib\\.' : 'Insufficient permissions .* admin_packages\\.'
      assert.match(result.output, new RegExp(`403 Forbidden - ${refused} http://127\\.0\\.0\\.1:\\d+/api/v4/projects/200/packages/npm/-/package/@acme%2fhello/dist-tags${refused === 'GET' ? '' : '/stable'} - 403 Forbidden - ${message}\n`))
    }))
    assertDenied(rg.gate, 'DELETE', 'delete_projects_id_packages_npm_package_package_name_dist_tags_tag', 'MISSING_POLICIES', 'admin_packages')
    assert.equal(upstreamWrites(rg.gate).length, before, 'nothing written upstream')
    assert.equal(rg.registry.npm.get(`${PROJECT}/${NAME}`)?.['dist-tags'].stable, '1.0.0')

    assertOk(await run('npm', ['dist-tag', 'rm', NAME, 'stable'], self), 'npm dist-tag rm')
    assert.equal(rg.registry.npm.get(`${PROJECT}/${NAME}`)?.['dist-tags'].stable, undefined)
  })
})
