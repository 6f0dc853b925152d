// Maven through the gate as GitLab's docs set it up in a CI job: settings.xml sends the job token
// in a `Job-Token` header, or as `gitlab-ci-token` Basic credentials (sent after the registry's
// 401 challenge). `deploy:deploy-file` (GET maven-metadata.xml, PUT of jar, pom, checksums and
// metadata) and a build that downloads a dependency (`mvn compile` of a project depending on a
// package of the registry), with the four kinds of job token; and a project whose package rules
// keep Maven writes to Maintainers refuses `mvn deploy` from its own job token.
//
// No network: the plugins come from the local repository (~/.m2), checked offline first, and a
// mirror sends every repository but the gate's to a closed port. The download is a build rather
// than `dependency:get`: no maven-dependency-plugin of the local repository resolves offline.

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ADMIN } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { JOBS, PROJECT, assertDenied, assertFailed, assertOk, requireClient, run, startRegistryGate, tempDir, upstreamWrites, type RegistryGate } from './support.ts'

const DEPLOY = 'org.apache.maven.plugins:maven-deploy-plugin:3.1.2'
const RESOURCES = 'org.apache.maven.plugins:maven-resources-plugin:3.3.1'
const COMPILER = 'org.apache.maven.plugins:maven-compiler-plugin:3.13.0'

/** The plugins and their dependencies resolve from the local repository alone (one offline run). */
async function requirePlugins (t: TestContext): Promise<boolean> {
  const plugins = [DEPLOY, RESOURCES, COMPILER]
  const result = await run('mvn', ['-o', '-B', '-q', ...plugins.map(p => `${p}:help`)], { env: MAVEN_ENV })
  if (result.code === 0) return true
  const why = `${plugins.join(', ')} (with their dependencies) are not all in the local Maven repository ${join(homedir(), '.m2/repository')}, and no Maven repository is reachable to fetch them`
  return requireTool(t, `${why}:\n${result.output}`)
}

// Short-lived JVMs: start faster without the optimizing compiler.
const MAVEN_ENV = { MAVEN_OPTS: '-XX:TieredStopAtLevel=1 -Xshare:auto' }

type Auth = 'header' | 'basic'

/** settings.xml of a CI job: the gate's repository, the job token, nothing else reachable. */
function settings (dir: string, rg: RegistryGate, auth: Auth, token: string): string {
  const server = auth === 'header'
    ? `<configuration><httpHeaders><property><name>Job-Token</name><value>${token}</value></property></httpHeaders></configuration>`
    : `<username>gitlab-ci-token</username><password>${token}</password>`
  const file = join(dir, `settings-${auth}-${token}.xml`)
  writeFileSync(file, `<settings>
  <servers><server><id>gitlab-maven</id>${server}</server></servers>
  <mirrors><mirror><id>nowhere</id><mirrorOf>*,!gitlab-maven</mirrorOf><url>http://127.0.0.1:9/</url></mirror></mirrors>
  <profiles><profile><id>gitlab</id>
    <repositories><repository><id>gitlab-maven</id><url>${rg.api}/projects/${PROJECT}/packages/maven</url></repository></repositories>
  </profile></profiles>
  <activeProfiles><activeProfile>gitlab</activeProfile></activeProfiles>
</settings>
`)
  return file
}

interface Ctx { readonly rg: RegistryGate, readonly dir: string, readonly group: string }

async function deploy (c: Ctx, auth: Auth, token: string, artifact: string): Promise<Awaited<ReturnType<typeof run>>> {
  const jar = join(c.dir, `${artifact}.jar`)
  writeFileSync(jar, `jar of ${artifact}`)
  return await run('mvn', ['-B', '-s', settings(c.dir, c.rg, auth, token), `${DEPLOY}:deploy-file`,
    `-Dfile=${jar}`, `-DgroupId=${c.group}`, `-DartifactId=${artifact}`, '-Dversion=1.0.0', '-Dpackaging=jar', '-DgeneratePom=true',
    '-DrepositoryId=gitlab-maven', `-Durl=${c.rg.api}/projects/${PROJECT}/packages/maven`], { cwd: c.dir, env: MAVEN_ENV })
}

/** `mvn compile` of a project that depends on `artifact`: Maven downloads its pom and jar. */
async function get (c: Ctx, auth: Auth, token: string, artifact: string): Promise<Awaited<ReturnType<typeof run>>> {
  const dir = join(c.dir, `build-${auth}-${token}`)
  mkdirSync(dir, { recursive: true })
  const [pluginGroup, resources, resourcesVersion] = RESOURCES.split(':') as [string, string, string]
  const [, compiler, compilerVersion] = COMPILER.split(':') as [string, string, string]
  writeFileSync(join(dir, 'pom.xml'), `<project><modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId><artifactId>consumer</artifactId><version>1.0.0</version>
  <properties><maven.compiler.release>17</maven.compiler.release><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencies><dependency><groupId>${c.group}</groupId><artifactId>${artifact}</artifactId><version>1.0.0</version></dependency></dependencies>
  <build><plugins>
    <plugin><groupId>${pluginGroup}</groupId><artifactId>${resources}</artifactId><version>${resourcesVersion}</version></plugin>
    <plugin><groupId>${pluginGroup}</groupId><artifactId>${compiler}</artifactId><version>${compilerVersion}</version></plugin>
  </plugins></build>
</project>
`)
  return await run('mvn', ['-B', '-s', settings(c.dir, c.rg, auth, token), 'compile'], { cwd: dir, env: MAVEN_ENV })
}

const groupPath = (group: string): string => group.replaceAll('.', '/')

/** A group of its own in the shared local repository (one folder, nothing left), removed after the test. */
function uniqueGroup (t: TestContext): string {
  const group = `jobtokengatetest${randomBytes(4).toString('hex')}`
  t.after(() => { rmSync(join(homedir(), '.m2/repository', groupPath(group)), { recursive: true, force: true }) })
  return group
}

/** A deployed artifact, as GitLab stores it, for dependency:get to fetch. */
function seedArtifact (c: Ctx, artifact: string): void {
  const base = `${groupPath(c.group)}/${artifact}/1.0.0/${artifact}-1.0.0`
  c.rg.registry.seedFile(PROJECT, 'maven', `${base}.jar`, Buffer.from(`jar of ${artifact}`))
  c.rg.registry.seedFile(PROJECT, 'maven', `${base}.pom`, Buffer.from(`<project><modelVersion>4.0.0</modelVersion><groupId>${c.group}</groupId><artifactId>${artifact}</artifactId><version>1.0.0</version></project>`))
}

// What Maven prints when the gate refuses a transfer.
const REFUSED = /authorization failed for http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/200\/packages\/maven\/\S+, status: 403 Forbidden/

test('mvn: deploy:deploy-file and a dependency download with the job token in settings.xml; package rules', async t => {
  if (!requireClient(t, 'mvn', ['mvn', '--version'], 'install Debian\'s maven')) return
  if (!await requirePlugins(t)) return
  const c: Ctx = { rg: await startRegistryGate(t, { admin: true }), dir: tempDir(t, 'mvn'), group: uniqueGroup(t) }
  seedArtifact(c, 'seeded')

  await t.test('deploy: the project itself and an allowlisted project with admin_packages, header and Basic', async () => {
    const runs = await Promise.all([
      deploy(c, 'header', JOBS.self, 'self-header'),
      deploy(c, 'basic', JOBS.withPolicy, 'policy-basic')
    ])
    runs.forEach((r, i) => { assertOk(r, `mvn deploy #${i}`) })
    for (const artifact of ['self-header', 'policy-basic']) {
      const base = `${PROJECT}/maven/${groupPath(c.group)}/${artifact}`
      assert.ok(c.rg.registry.files.has(`${base}/1.0.0/${artifact}-1.0.0.jar`), `${artifact} jar`)
      assert.ok(c.rg.registry.files.has(`${base}/1.0.0/${artifact}-1.0.0.pom`), `${artifact} pom`)
      assert.ok(c.rg.registry.files.has(`${base}/1.0.0/${artifact}-1.0.0.jar.sha1`), `${artifact} checksum`)
      assert.ok(c.rg.registry.files.has(`${base}/maven-metadata.xml`), `${artifact} metadata`)
    }
  })

  await t.test('deploy refused: read_packages only and not allowlisted, header and Basic; nothing written', async () => {
    const before = upstreamWrites(c.rg.gate).length
    const runs = await Promise.all([
      deploy(c, 'header', JOBS.readOnly, 'ro-header'),
      deploy(c, 'basic', JOBS.notAllowlisted, 'out-basic')
    ])
    for (const r of runs) {
      assertFailed(r, 'mvn deploy')
      assert.match(r.output, /BUILD FAILURE/)
      assert.match(r.output, REFUSED)
    }
    assert.equal(upstreamWrites(c.rg.gate).length, before, 'nothing written upstream')
    assertDenied(c.rg.gate, 'PUT', 'put_projects_id_packages_maven_path_file_name', 'MISSING_POLICIES', 'admin_packages')
    assertDenied(c.rg.gate, 'PUT', 'put_projects_id_packages_maven_path_file_name', 'NOT_ALLOWLISTED')
  })

  await t.test('a build downloads a dependency: the project itself and allowlisted projects; refused when not allowlisted', async () => {
    // One artifact per build, so that none finds another's download in the local repository.
    const local = (artifact: string): string => join(homedir(), '.m2/repository', groupPath(c.group), `${artifact}/1.0.0/${artifact}-1.0.0.jar`)
    for (const artifact of ['for-self', 'for-reader', 'for-outsider']) seedArtifact(c, artifact)
    const [self, reader, outsider] = await Promise.all([
      get(c, 'header', JOBS.self, 'for-self'),
      get(c, 'basic', JOBS.readOnly, 'for-reader'),
      get(c, 'header', JOBS.notAllowlisted, 'for-outsider')
    ])
    assertOk(self, 'mvn compile (header, self)')
    assertOk(reader, 'mvn compile (basic, read_packages)')
    assert.ok(existsSync(local('for-self')) && existsSync(local('for-reader')), 'the jars were downloaded')
    assertFailed(outsider, 'mvn compile (not allowlisted)')
    assert.match(outsider.output, REFUSED)
    assert.ok(!existsSync(local('for-outsider')))
    assertDenied(c.rg.gate, 'GET', 'get_projects_id_packages_maven_path_file_name', 'NOT_ALLOWLISTED')
  })

  await t.test('a project keeping Maven writes to Maintainers refuses deploy from its own job token', async () => {
    const patch = await send(c.rg.url, 'PATCH', `/api/v4/projects/${PROJECT}/job_token_permissions`, { 'private-token': ADMIN, 'content-type': 'application/json' },
      JSON.stringify({ package_registry: { maven: { read: true, write: 'maintainer' } } }))
    assert.equal(patch.status, 200, patch.text)
    const before = upstreamWrites(c.rg.gate).length
    const [refused, read] = await Promise.all([deploy(c, 'header', JOBS.self, 'ruled'), get(c, 'basic', JOBS.withPolicy, 'seeded')])
    assertFailed(refused, 'mvn deploy under a Maintainer-only rule')
    assert.match(refused.output, REFUSED)
    assert.equal(upstreamWrites(c.rg.gate).length, before, 'nothing written upstream')
    assertDenied(c.rg.gate, 'PUT', 'put_projects_id_packages_maven_path_file_name', 'PACKAGE_MAINTAINER_ONLY')
    assertOk(read, 'reads still pass')
  })
})
