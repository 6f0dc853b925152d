// Composer through the gate as GitLab's docs set it up in a CI job: the group registry's
// packages.json as the repository, and `gitlab-ci-token` with the job token as http-basic
// credentials in auth.json. The group's index and metadata name no single project (GitLab
// decides them); the archive is downloaded from the owning project's endpoint, at the absolute
// URL the metadata gives, and the gate decides it like every project route.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GROUP, JOBS, PROJECT, assertDenied, assertFailed, assertOk, requireClient, run, startRegistryGate, tempDir, type RegistryGate } from './support.ts'

// A package archive as GitLab builds it from a tag: one top directory holding composer.json.
const BUILD_ZIP = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
  z.writestr("hello-1.0.0/composer.json", '{"name": "acme/hello", "autoload": {"psr-4": {"Acme\\\\\\\\Hello\\\\\\\\": "src/"}}}')
  z.writestr("hello-1.0.0/src/Hello.php", "<?php\\nnamespace Acme\\\\Hello;\\nclass Hello { const VERSION = '1.0.0'; }\\n")
`

function job (rg: RegistryGate, root: string, name: string, token: string): { cwd: string, env: Record<string, string> } {
  const cwd = join(root, name)
  mkdirSync(cwd, { recursive: true })
  writeFileSync(join(cwd, 'composer.json'), JSON.stringify({
    name: 'acme/app',
    require: { 'acme/hello': '1.0.0' },
    repositories: [
      { type: 'composer', url: `${rg.api}/group/${GROUP}/-/packages/composer/packages.json` },
      { 'packagist.org': false }
    ],
    config: { 'secure-http': false }
  }, null, 2))
  writeFileSync(join(cwd, 'auth.json'), JSON.stringify({ 'http-basic': { [new URL(rg.url).host]: { username: 'gitlab-ci-token', password: token } } }))
  return {
    cwd,
    env: { COMPOSER_HOME: join(cwd, '.composer'), COMPOSER_CACHE_DIR: join(cwd, '.composer-cache'), COMPOSER_ALLOW_SUPERUSER: '1', COMPOSER_NO_INTERACTION: '1' }
  }
}

const INSTALL = ['install', '--no-interaction', '--no-progress', '--no-plugins', '--no-scripts']

test('composer: install from the group registry with gitlab-ci-token credentials in auth.json', async t => {
  if (!requireClient(t, 'composer', ['composer', '--version', '--no-interaction'], 'install Debian\'s composer')) return
  const root = tempDir(t, 'composer')
  const rg = await startRegistryGate(t)
  const zipPath = join(root, 'hello.zip')
  assertOk(await run('python3', ['-c', BUILD_ZIP, zipPath]), 'building the archive')
  rg.registry.seedComposer(PROJECT, GROUP, 'acme/hello', '1.0.0', readFileSync(zipPath))

  await t.test('the project itself and allowlisted projects install', async () => {
    await Promise.all((['self', 'withPolicy', 'readOnly'] as const).map(async kind => {
      const j = job(rg, root, kind, JOBS[kind])
      assertOk(await run('composer', INSTALL, j), `composer install (${kind})`)
      assert.match(readFileSync(join(j.cwd, 'vendor/acme/hello/src/Hello.php'), 'utf8'), /VERSION = '1\.0\.0'/)
    }))
    const archives = rg.gate.seen.filter(s => s.url.startsWith(`/api/v4/projects/${PROJECT}/packages/composer/archives/acme/hello.zip`))
    assert.equal(archives.length, 3, 'each archive came through the gate, at the URL the metadata gave')
    assert.ok(archives.every(a => String(a.headers.authorization).startsWith('Basic ')), 'with the job token as Basic')
  })

  await t.test('refused for a project not on the allowlist: composer shows the 403', async () => {
    const j = job(rg, root, 'notAllowlisted', JOBS.notAllowlisted)
    const result = await run('composer', INSTALL, j)
    assertFailed(result, 'composer install (not allowlisted)')
    assert.match(result.output, /could not\s+be\s+accessed\s+\(HTTP\s+403\):\s+HTTP\/1\.1\s+403\s+Forbidden/)
    // Composer wraps its error box to the terminal's width, URLs included.
    assert.match(result.output.replace(/\s*\n\s*/g, ''), /'http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/200\/packages\/composer\/archives\/acme\/hello\.zip\?sha=[0-9a-f]{40}' URL/)
    assert.ok(!existsSync(join(j.cwd, 'vendor/acme/hello/src/Hello.php')))
    assertDenied(rg.gate, 'GET', 'get_projects_id_packages_composer_archives_package_name', 'NOT_ALLOWLISTED')
  })
})
