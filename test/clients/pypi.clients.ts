// pip and twine through the gate as CI jobs use GitLab's PyPI registry: `pip install` and
// `pip download` with `gitlab-ci-token:<job token>@` in the index URL (Basic), and `twine upload`
// with TWINE_USERNAME=gitlab-ci-token (a multipart POST), with the four kinds of job token.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { JOBS, MISSING_ADMIN_PACKAGES, NOT_ALLOWLISTED, PROJECT, assertDenied, assertFailed, assertOk, requireClient, run, startRegistryGate, tempDir, upstreamWrites } from './support.ts'

// A wheel as `python -m build` makes one, written with the standard library's zipfile.
const BUILD_WHEEL = `
import base64, hashlib, os, sys, zipfile
name, version, out = sys.argv[1], sys.argv[2], sys.argv[3]
extra = int(sys.argv[4]) if len(sys.argv) > 4 else 0
dist = f"{name}-{version}.dist-info"
files = {
  f"{name}/__init__.py": f"VERSION = '{version}'\\n",
  **({f"{name}/data.bin": os.urandom(extra)} if extra > 0 else {}),
  f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {name.replace('_', '-')}\\nVersion: {version}\\nSummary: a test package\\n",
  f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
path = f"{out}/{name}-{version}-py3-none-any.whl"
with zipfile.ZipFile(path, "w") as z:
  for n, text in files.items():
    data = text if isinstance(text, bytes) else text.encode()
    z.writestr(n, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{n},sha256={digest},{len(data)}")
  record.append(f"{dist}/RECORD,,")
  z.writestr(f"{dist}/RECORD", "\\n".join(record) + "\\n")
print(path)
`

const PIP_FLAGS = ['--no-deps', '--no-input', '--no-cache-dir', '--disable-pip-version-check', '--keyring-provider', 'disabled']
// Only the index given: no configuration file, no local wheel directory of the machine.
const PIP_ENV = { PIP_CONFIG_FILE: '/dev/null', PIP_FIND_LINKS: '', PYTHONDONTWRITEBYTECODE: '1' }

test('pip: install and download with gitlab-ci-token Basic credentials in the index URL', async t => {
  if (!requireClient(t, 'pip', ['python3', '-m', 'pip', '--version'], 'install python3-pip')) return
  const root = tempDir(t, 'pip')
  const rg = await startRegistryGate(t)
  const built = await run('python3', ['-c', BUILD_WHEEL, 'hello_pkg', '1.0.0', root])
  assertOk(built, 'building the wheel')
  const wheel = readFileSync(built.stdout.trim())
  const { createHash } = await import('node:crypto')
  rg.registry.seedFile(PROJECT, 'pypi', `files/${createHash('sha256').update(wheel).digest('hex')}/hello_pkg-1.0.0-py3-none-any.whl`, wheel)
  const index = (token: string): string => `${rg.api.replace('http://', `http://gitlab-ci-token:${token}@`)}/projects/${PROJECT}/packages/pypi/simple`

  await t.test('pip install and pip download: the project itself, and allowlisted projects that may read', async () => {
    await Promise.all((['self', 'withPolicy', 'readOnly'] as const).map(async kind => {
      const target = join(root, `install-${kind}`)
      assertOk(await run('python3', ['-m', 'pip', 'install', ...PIP_FLAGS, '--target', target, '--index-url', index(JOBS[kind]), 'hello-pkg==1.0.0'], { env: PIP_ENV }), `pip install (${kind})`)
      assert.match(readFileSync(join(target, 'hello_pkg/__init__.py'), 'utf8'), /VERSION = '1\.0\.0'/)
      const dest = join(root, `download-${kind}`)
      assertOk(await run('python3', ['-m', 'pip', 'download', ...PIP_FLAGS, '--dest', dest, '--index-url', index(JOBS[kind]), 'hello-pkg==1.0.0'], { env: PIP_ENV }), `pip download (${kind})`)
      assert.deepEqual(readdirSync(dest), ['hello_pkg-1.0.0-py3-none-any.whl'])
    }))
    const downloads = rg.gate.seen.filter(s => s.url.includes('/packages/pypi/files/'))
    assert.equal(downloads.length, 6, 'every wheel came through the gate, at the URL the simple page gave')
  })

  await t.test('pip refused for a project not on the allowlist: no version found, the 403 with -vv', async () => {
    const target = join(root, 'install-notAllowlisted')
    const result = await run('python3', ['-m', 'pip', 'install', ...PIP_FLAGS, '--target', target, '--index-url', index(JOBS.notAllowlisted), 'hello-pkg==1.0.0'], { env: PIP_ENV })
    assertFailed(result, 'pip install (not allowlisted)')
    assert.match(result.output, /No matching distribution found for hello-pkg==1\.0\.0/)
    // pip logs a refused index page only at -vv (debug).
    const verbose = await run('python3', ['-m', 'pip', 'download', '-vv', ...PIP_FLAGS, '--dest', target, '--index-url', index(JOBS.notAllowlisted), 'hello-pkg==1.0.0'], { env: PIP_ENV })
    assertFailed(verbose, 'pip download -vv (not allowlisted)')
    assert.match(verbose.output, /403 Client Error: Forbidden for url: http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/200\/packages\/pypi\/simple\/hello-pkg\//)
    assert.ok(!existsSync(join(target, 'hello_pkg')))
    assertDenied(rg.gate, 'GET', 'get_projects_id_packages_pypi_simple_package_name', 'NOT_ALLOWLISTED')
  })
})

test('twine: upload with TWINE_USERNAME=gitlab-ci-token', async t => {
  if (!requireClient(t, 'twine', ['twine', '--version'], 'install Debian\'s twine')) return
  const root = tempDir(t, 'twine')
  const rg = await startRegistryGate(t)
  const upload = async (kind: keyof typeof JOBS, version: string, flags: string[] = [], extraBytes = 0): Promise<Awaited<ReturnType<typeof run>>> => {
    const built = await run('python3', ['-c', BUILD_WHEEL, 'hello_pkg', version, root, String(extraBytes)])
    assertOk(built, 'building the wheel')
    return await run('twine', ['upload', '--non-interactive', '--disable-progress-bar', ...flags, '--repository-url', `${rg.api}/projects/${PROJECT}/packages/pypi`, built.stdout.trim()], {
      env: { TWINE_USERNAME: 'gitlab-ci-token', TWINE_PASSWORD: JOBS[kind], PYTHON_KEYRING_BACKEND: 'keyring.backends.null.Keyring' }
    })
  }

  await t.test('the project itself and an allowlisted project with admin_packages upload', async () => {
    for (const [kind, version] of [['self', '1.0.1'], ['withPolicy', '1.0.2']] as const) {
      assertOk(await upload(kind, version), `twine upload (${kind})`)
    }
    assert.deepEqual(rg.registry.writes.map(w => w.path), ['hello_pkg-1.0.1-py3-none-any.whl', 'hello_pkg-1.0.2-py3-none-any.whl'])
  })

  await t.test('a wheel over the inspected size: the multipart body streams through the guard', async () => {
    assertOk(await upload('self', '1.1.0', [], 512 * 1024), 'twine upload of a 512 KiB wheel')
    const stored = rg.registry.writes.at(-1)
    assert.equal(stored?.path, 'hello_pkg-1.1.0-py3-none-any.whl')
    assert.ok((stored?.bytes ?? 0) > 512 * 1024, 'the whole wheel reached the registry')
    const refused = await upload('readOnly', '1.1.1', ['--verbose'], 512 * 1024)
    assertFailed(refused, 'twine upload of a 512 KiB wheel (read_packages only)')
    assert.ok(refused.output.replace(/\s+/g, ' ').includes(MISSING_ADMIN_PACKAGES), refused.output)
    assert.equal(rg.registry.writes.at(-1)?.path, 'hello_pkg-1.1.0-py3-none-any.whl')
  })

  await t.test('refused: read_packages only, and not allowlisted; twine shows the 403', async () => {
    for (const [kind, version] of [['readOnly', '1.0.3'], ['notAllowlisted', '1.0.4']] as const) {
      const result = await upload(kind, version, ['--verbose'])
      assertFailed(result, `twine upload (${kind})`)
      // twine wraps its lines to the terminal's width.
      const seen = result.output.replace(/\x1b\[[0-9;]*m/g, '').replace(/\s+/g, ' ')
      assert.match(seen, /HTTPError: 403 Forbidden from http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/200\/packages\/pypi/)
      // --verbose, which twine suggests, shows GitLab's body.
      assert.ok(seen.includes(kind === 'readOnly' ? MISSING_ADMIN_PACKAGES : NOT_ALLOWLISTED), seen)
    }
    assert.deepEqual(upstreamWrites(rg.gate).length, 3, 'nothing more written upstream')
    assert.equal(rg.registry.writes.length, 3)
    assertDenied(rg.gate, 'POST', 'post_projects_id_packages_pypi', 'MISSING_POLICIES', 'admin_packages')
    assertDenied(rg.gate, 'POST', 'post_projects_id_packages_pypi', 'NOT_ALLOWLISTED')
  })
})
