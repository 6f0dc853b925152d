// The requests real CI jobs send, as their clients send them (method, path, headers, where the job
// token goes, bodies), through the gate as a proxy and behind the shipped nginx configuration in
// forward-auth (GATE_FORWARD_AUTH_BODIES=declared, GATE_FORWARD_AUTH_ORIGINAL=headers as the
// configuration recommends), each by five jobs of the test world
// (test/helpers/gate.ts): acme/lib's own (self access), acme/platform/web's (its acme group entry,
// default permissions), acme/platform/app's (a project entry with read_packages only), other/tools'
// on acme/registry (its group entry with admin_packages) and other/tools' on acme/lib (no entry).
// Each is allowed exactly where GitLab's rules allow it, refused otherwise with the gate's body
// and code (through nginx too), and an allowed request reaches GitLab as sent: method, path,
// every header the client sent, the body byte for byte. Behind nginx, a request with a body the
// gate cannot see that GitLab reads credentials from is refused, BODY_NOT_VISIBLE
// (docs/deploy.md). The real clients themselves run in test/clients (npm run test:clients).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

interface Sent { readonly method: string, readonly path: string, readonly headers: Record<string, string>, readonly body?: string | Buffer }
interface Client {
  readonly name: string
  /** The route's policies; `skip`: skips policies; `aw`: authenticate_with, no policies (a fine-grained entry refuses it). */
  readonly needs: readonly string[] | 'skip' | 'aw'
  /** The container registry repositories API: the job's own project only. */
  readonly ownProjectOnly?: true
  /** A body GitLab reads credentials from: nginx does not show it to the gate. `token`: the job token is only there. */
  readonly hiddenBody?: 'body' | 'token'
  readonly send: (project: number, token: string) => Sent
}

const A = '/api/v4/projects/'
const basic = (token: string): string => `Basic ${Buffer.from(`gitlab-ci-token:${token}`).toString('base64')}`
const multipart = (boundary: string, parts: Array<[string, string, string?]>): string =>
  parts.map(([name, value, file]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file === undefined ? '' : `; filename="${file}"\r\nContent-Type: application/octet-stream`}\r\n\r\n${value}\r\n`).join('') + `--${boundary}--\r\n`
/** GitLab's Conan JWT (HS256, its signature unchecked here): the job token in `access_token`. */
const conanJwt = (token: string): string => [{ alg: 'HS256', typ: 'JWT' }, { access_token: token, user_id: 7, exp: 4102444800 }].map(o => Buffer.from(JSON.stringify(o)).toString('base64url')).join('.') + '.c2ln'
const NUGET_BOUNDARY = '8d2a1c5e-0b4e-4f3b-9c1a-2f6b8f1d0a11'
const TWINE_BOUNDARY = '0123456789abcdef0123456789abcdef'
const tfLock = JSON.stringify({ ID: 'e2b7d3c0-1111-2222-3333-444455556666', Operation: 'OperationTypeApply', Who: 'runner@host', Version: '1.5.7' })

const CLIENTS: Client[] = [
  { name: 'npm install: metadata', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/npm/@acme%2fhello`, headers: { authorization: `Bearer ${t}`, accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*', 'npm-command': 'install' } }) },
  { name: 'npm install: tarball', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/npm/@acme/hello/-/@acme/hello-1.0.0.tgz`, headers: { authorization: `Bearer ${t}` } }) },
  { name: 'npm publish', needs: ['admin_packages'], hiddenBody: 'body', send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/npm/@acme%2fhello`, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', 'npm-command': 'publish' }, body: JSON.stringify({ name: '@acme/hello', versions: { '1.0.0': { dist: { tarball: `http://gitlab/api/v4/projects/${p}/packages/npm/@acme/hello/-/@acme/hello-1.0.0.tgz` } } }, _attachments: { 'hello-1.0.0.tgz': { data: 'H4sIAAAAAAAAA+3OMQ6CQBCF4a33', length: 20 } } }) }) },
  { name: 'npm dist-tag add', needs: ['admin_packages'], hiddenBody: 'body', send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/npm/-/package/@acme%2fhello/dist-tags/beta`, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '"1.0.0"' }) },
  { name: 'npm dist-tag rm', needs: ['admin_packages'], send: (p, t) => ({ method: 'DELETE', path: `${A}${p}/packages/npm/-/package/@acme%2fhello/dist-tags/beta`, headers: { authorization: `Bearer ${t}` } }) },
  { name: 'mvn deploy: jar (Job-Token from settings.xml, no Content-Type)', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/maven/com/example/app/1.0/app-1.0.jar`, headers: { 'Job-Token': t, 'user-agent': 'Apache-Maven/3.9.6' }, body: 'PK\x03\x04 jar' }) },
  { name: 'mvn deploy: a JSON SBOM', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/maven/com/example/app/1.0/app-1.0-cyclonedx.json`, headers: { 'Job-Token': t }, body: '{"bomFormat":"CycloneDX","components":[]}' }) },
  { name: 'gradle publish: module metadata', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/maven/com/example/app/1.0/app-1.0.module`, headers: { 'Job-Token': t, 'content-type': 'application/octet-stream' }, body: '{"formatVersion":"1.1"}' }) },
  { name: 'gradle: HEAD of a dependency', needs: ['read_packages'], send: (p, t) => ({ method: 'HEAD', path: `${A}${p}/packages/maven/com/example/app/1.0/app-1.0.jar`, headers: { 'Job-Token': t } }) },
  { name: 'twine upload', needs: ['admin_packages'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/packages/pypi`, headers: { authorization: basic(t), 'content-type': `multipart/form-data; boundary=${TWINE_BOUNDARY}` }, body: multipart(TWINE_BOUNDARY, [[':action', 'file_upload'], ['name', 'hello'], ['version', '1.0'], ['sha256_digest', 'a'.repeat(64)], ['content', 'PK\x03\x04 wheel', 'hello-1.0-py3-none-any.whl']]) }) },
  { name: 'pip install: simple index', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/pypi/simple/hello/`, headers: { authorization: basic(t) } }) },
  { name: 'pip install: file', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/pypi/files/${'b'.repeat(64)}/hello-1.0-py3-none-any.whl`, headers: { authorization: basic(t) } }) },
  { name: 'dotnet nuget push (X-NuGet-ApiKey)', needs: 'aw', send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/nuget/`, headers: { 'x-nuget-apikey': t, 'content-type': `multipart/form-data; boundary="${NUGET_BOUNDARY}"` }, body: `--${NUGET_BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name=package; filename=package.nupkg; filename*=utf-8''package.nupkg\r\n\r\nPK\x03\x04\r\n--${NUGET_BOUNDARY}--\r\n` }) },
  { name: 'dotnet restore: download', needs: 'aw', send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/nuget/download/hello/1.0.0/hello.1.0.0.nupkg`, headers: { authorization: basic(t) } }) },
  { name: 'helm cm-push', needs: 'aw', send: (p, t) => ({ method: 'POST', path: `${A}${p}/packages/helm/api/stable/charts`, headers: { authorization: basic(t), 'content-type': 'multipart/form-data; boundary=f1e2d3c4' }, body: multipart('f1e2d3c4', [['chart', '\x1f\x8b chart', 'mychart-0.1.0.tgz']]) }) },
  { name: 'helm repo index', needs: 'aw', send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/helm/stable/index.yaml`, headers: { authorization: basic(t) } }) },
  { name: 'composer publish (curl --data tag=)', needs: ['admin_packages'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/packages/composer`, headers: { 'job-token': t, 'content-type': 'application/x-www-form-urlencoded' }, body: 'tag=v1.0' }) },
  { name: 'composer install: archive', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/composer/archives/acme/hello.zip?sha=abc`, headers: { authorization: basic(t) } }) },
  { name: 'conan authenticate', needs: 'skip', send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/conan/v1/users/authenticate`, headers: { authorization: basic(t) } }) },
  { name: 'conan upload: upload_urls (Conan JWT)', needs: ['read_packages'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/packages/conan/v1/conans/hello/1.0/acme+lib/stable/upload_urls`, headers: { authorization: `Bearer ${conanJwt(t)}`, 'content-type': 'application/json' }, body: '{"conanfile.py":120,"conanmanifest.txt":40}' }) },
  { name: 'conan upload: file (Conan JWT)', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/conan/v1/files/hello/1.0/acme+lib/stable/0/export/conanfile.py`, headers: { authorization: `Bearer ${conanJwt(t)}` }, body: 'from conans import ConanFile\n' }) },
  { name: 'conan install: download_urls (Conan JWT)', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/conan/v1/conans/hello/1.0/acme+lib/stable/download_urls`, headers: { authorization: `Bearer ${conanJwt(t)}` } }) },
  { name: 'cargo publish', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/cargo/api/v1/crates/new`, headers: { authorization: `Bearer ${t}`, accept: 'application/json' }, body: Buffer.concat([Buffer.from([123, 1, 0, 0]), Buffer.from(`{"name":"hello"}`.padEnd(379)), Buffer.from([4, 0, 0, 0]), Buffer.from('\x1f\x8b\x08\x00')]) }) },
  { name: 'cargo: sparse index', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/cargo/he/ll/hello`, headers: { authorization: `Bearer ${t}` } }) },
  { name: 'gem push', needs: 'aw', send: (p, t) => ({ method: 'POST', path: `${A}${p}/packages/rubygems/api/v1/gems`, headers: { authorization: t, 'content-type': 'application/octet-stream' }, body: 'gem' }) },
  { name: 'generic upload (curl --upload-file)', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/generic/tool/1.0.0/tool.tar.gz?select=package_file`, headers: { 'JOB-TOKEN': t }, body: '\x1f\x8b\x08 tarball' }) },
  { name: 'generic upload of a JSON Lines file', needs: ['admin_packages'], send: (p, t) => ({ method: 'PUT', path: `${A}${p}/packages/generic/logs/1.0.0/run.jsonl`, headers: { 'JOB-TOKEN': t }, body: '{"step":1}\n{"step":2}\n' }) },
  { name: 'generic download (wget, Basic)', needs: ['read_packages'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/packages/generic/tool/1.0.0/tool.tar.gz`, headers: { authorization: basic(t) } }) },
  { name: 'release-cli create', needs: ['admin_releases'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/releases`, headers: { 'JOB-TOKEN': t, 'content-type': 'application/json' }, body: JSON.stringify({ tag_name: 'v1.0', ref: 'main', assets: { links: [{ name: 'bin', url: 'https://example.com/bin' }] } }) }) },
  { name: 'release: latest asset download', needs: ['read_releases'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/releases/permalink/latest/downloads/bin/tool`, headers: { 'JOB-TOKEN': t } }) },
  { name: 'terraform http backend: state', needs: ['read_terraform_state'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/terraform/state/prod.us-east-1`, headers: { authorization: basic(t) } }) },
  { name: 'terraform http backend: lock', needs: ['admin_terraform_state'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/terraform/state/prod/lock`, headers: { authorization: basic(t), 'content-type': 'application/json' }, body: tfLock }) },
  { name: 'terraform http backend: save', needs: ['admin_terraform_state'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/terraform/state/prod?ID=e2b7d3c0-1111-2222-3333-444455556666`, headers: { authorization: basic(t), 'content-type': 'application/json' }, body: JSON.stringify({ version: 4, serial: 3, lineage: 'abc', outputs: {}, resources: [] }) }) },
  { name: 'artifacts of another project, by ref (job_token=)', needs: ['read_jobs'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/jobs/artifacts/feature/x/download?job=build&job_token=${t}`, headers: {} }) },
  { name: 'artifacts: one file by ref', needs: ['read_jobs'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/jobs/artifacts/main/raw/dist/app.js?job=build`, headers: { 'JOB-TOKEN': t } }) },
  { name: 'trigger a pipeline (curl --form token=)', needs: 'skip', hiddenBody: 'token', send: (p, t) => ({ method: 'POST', path: `${A}${p}/trigger/pipeline`, headers: { 'content-type': 'multipart/form-data; boundary=--------abc' }, body: multipart('--------abc', [['token', t], ['ref', 'main']]) }) },
  { name: 'trigger a pipeline (query string)', needs: 'skip', send: (p, t) => ({ method: 'POST', path: `${A}${p}/ref/release%2F1.0/trigger/pipeline?token=${t}&variables[A]=b`, headers: {} }) },
  { name: 'create a deployment', needs: ['admin_deployments', 'admin_environments'], hiddenBody: 'body', send: (p, t) => ({ method: 'POST', path: `${A}${p}/deployments`, headers: { 'JOB-TOKEN': t, 'content-type': 'application/x-www-form-urlencoded' }, body: 'environment=prod&sha=abc&ref=main&tag=false&status=running' }) },
  { name: 'stop an environment', needs: ['admin_environments'], send: (p, t) => ({ method: 'POST', path: `${A}${p}/environments/3/stop`, headers: { 'JOB-TOKEN': t } }) },
  { name: 'list environments', needs: ['read_environments'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/environments?name=prod`, headers: { 'JOB-TOKEN': t } }) },
  { name: 'registry: list repositories', needs: 'skip', ownProjectOnly: true, send: (p, t) => ({ method: 'GET', path: `${A}${p}/registry/repositories?tags=true`, headers: { 'JOB-TOKEN': t } }) },
  { name: 'registry: delete tags', needs: 'skip', ownProjectOnly: true, send: (p, t) => ({ method: 'DELETE', path: `${A}${p}/registry/repositories/5/tags?name_regex_delete=.*&keep_n=5`, headers: { 'JOB-TOKEN': t } }) },
  { name: 'download-secure-files', needs: ['read_secure_files'], send: (p, t) => ({ method: 'GET', path: `${A}${p}/secure_files/9/download`, headers: { 'JOB-TOKEN': t } }) }
]

/** The five jobs: the accessed project, the token, and what GitLab answers a client's request. */
const JOBS: Array<{ readonly job: string, readonly project: number, readonly token: string, readonly expect: (c: Client) => string }> = [
  { job: 'own project', project: 200, token: TOKENS.lib, expect: () => 'allow' },
  { job: 'default permissions', project: 200, token: TOKENS.web, expect: c => c.ownProjectOnly === true ? 'JOB_TOKEN_SCOPE_PROJECT_ONLY' : 'allow' },
  { job: 'read_packages', project: 200, token: TOKENS.app, expect: fineGrained(['read_packages']) },
  { job: 'admin_packages', project: 700, token: TOKENS.tools, expect: fineGrained(['admin_packages', 'read_packages']) },
  { job: 'not allowlisted', project: 200, token: TOKENS.tools, expect: c => c.ownProjectOnly === true ? 'JOB_TOKEN_SCOPE_PROJECT_ONLY' : 'NOT_ALLOWLISTED' }
]

function fineGrained (held: readonly string[]): (c: Client) => string {
  return c => c.ownProjectOnly === true
    ? 'JOB_TOKEN_SCOPE_PROJECT_ONLY'
    : c.needs === 'skip' ? 'allow' : c.needs === 'aw' ? 'NO_POLICIES_FOR_ENDPOINT' : c.needs.every(p => held.includes(p)) ? 'allow' : 'MISSING_POLICIES'
}

const sha256 = (body: string | Buffer | undefined): string => createHash('sha256').update(body ?? '').digest('hex')

test('CI clients\' requests through the proxy and behind the shipped nginx: allowed as GitLab allows them, sent on as sent', { timeout: 60_000 }, async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'declared', GATE_FORWARD_AUTH_ORIGINAL: 'headers' })
  const modes: Array<[string, string]> = [['proxy', g.url]]
  if (needsNginx === false) {
    const { base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port })
    modes.push(['nginx', base])
  }
  for (const client of CLIENTS) {
    for (const { job, project, token, expect } of JOBS) {
      const sent = client.send(project, token)
      for (const [mode, base] of modes) {
        let want = expect(client)
        if (mode === 'nginx' && client.hiddenBody !== undefined && (want === 'allow' || client.hiddenBody === 'token')) want = 'BODY_NOT_VISIBLE'
        const what = `${mode}, ${client.name}, ${job}`
        const before = g.seen.length
        const res = await send(base, sent.method, sent.path, sent.headers, sent.body)
        if (want !== 'allow') {
          assert.equal(res.status, 403, `${what}: ${res.text}`)
          // A HEAD's answer has no body.
          if (sent.method !== 'HEAD') {
            assert.equal(res.json().code, want, what)
            assert.match(res.json().message, /^403 Forbidden - /, what)
          }
          assert.equal(g.seen.length, before, `${what}: nothing reached GitLab`)
          continue
        }
        assert.equal(res.status, 200, `${what}: ${res.text}`)
        const seen = g.seen.at(-1)!
        assert.equal(g.seen.length, before + 1, what)
        assert.deepEqual([seen.method, seen.url, seen.sha256], [sent.method, sent.path, sha256(sent.body)], what)
        for (const [name, value] of Object.entries(sent.headers)) assert.equal(seen.headers[name.toLowerCase()], value, `${what}: ${name}`)
      }
    }
  }
})
