// `job-token-gate explain` says how the project of a group, instance or job route is found.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import { createCanonicalizer } from '../../src/routing/canonical.ts'
import { explain, formatExplanation } from '../../src/routing/explain.ts'
import { Router } from '../../src/routing/router.ts'

const router = Router.compile(loadCatalog().routes)
const canonicalize = createCanonicalizer({ relativeUrlRoot: '' })
const text = (method: string, path: string): string => formatExplanation(explain(router, canonicalize(method, path)))

test('explain names the lookup of group, instance and job routes, and none for project routes', () => {
  assert.match(text('PUT', '/api/v4/packages/conan/v1/files/pkg/1.0/acme+lib/stable/0/export/conanfile.py'),
    /^project lookup +conan_username: project "acme\/lib": GET \/api\/v4\/projects\/acme%2Flib \(a moved project found through its old path\)$/m)
  assert.match(text('GET', '/api/v4/packages/maven/com/acme/app/1.0/app-1.0.jar'), /^project lookup +maven_instance_path: project "com\/acme\/app".*a moved path is not followed/m)
  assert.match(text('PUT', '/api/v4/packages/npm/-/package/@acme%2ftool/dist-tags/latest'), /^project lookup +npm_scope_package: the project of the newest npm package named exactly "@acme\/tool" under the root namespace "acme", as GitLab's npm metadata names it .*GET \/api\/v4\/packages\/npm\/%40acme%2Ftool;/m)
  assert.match(text('GET', '/api/v4/packages/npm/left-pad'), /^project lookup +npm_scope_package: no project \(an unscoped npm package name names no namespace\)/m)
  assert.match(text('GET', '/api/v4/group/7/-/packages/composer/packages'), /^project lookup +none: not looked up/m)
  assert.match(text('GET', '/api/v4/jobs/5/artifacts'), /^project lookup +job_pipeline: job #5/m)
  assert.doesNotMatch(text('GET', '/api/v4/projects/5/packages'), /project lookup/)
  const json = explain(router, canonicalize('GET', '/api/v4/packages/conan/v1/conans/pkg/1.0/42/stable'))
  assert.equal(json.result, 'matched')
  assert.deepEqual(json.result === 'matched' ? [json.projectFrom, json.projectLookup] : [], ['conan_username', { kind: 'project_id', id: 42 }])
})

test('explain names the package rule a route is held to, and the other projects held where GitLab serves from several', () => {
  assert.match(text('PUT', '/api/v4/projects/5/packages/npm/@acme%2ftool'), /^package rule +package_registry\.npm\.write \(package_registry\.npm\.delete with npm-command: deprecate\) of the accessed project's job token permissions$/m)
  assert.doesNotMatch(text('PUT', '/api/v4/projects/5/packages/npm/@acme%2ftool'), /also held/)
  assert.match(text('GET', '/api/v4/groups/+10/-/packages/pypi/files/abc/x.whl'), /^also held +every project under group "\+10" and group "10": refused where any sets package_registry\.pypi\.read false/m)
  assert.match(text('GET', '/api/v4/packages/terraform/modules/v1/acme/mod/aws/versions'), /^also held +every project under group "acme": refused where any sets package_registry\.terraform_module\.read false \(a user's namespace, or over 1,000 projects: refused\)$/m)
  assert.match(text('GET', '/api/v4/packages/npm/@acme/tool'), /^also held +every project whose packages of that name the metadata lists/m)
  assert.match(text('GET', '/api/v4/virtual_registries/packages/maven/5/com/acme/app/1.0/app-1.0.jar'), /^also held +every project among Maven virtual registry 5's local upstreams/m)
  // A group route whose project the gate finds holds that project's rule only.
  assert.doesNotMatch(text('GET', '/api/v4/groups/acme/-/packages/maven/com/acme/app/1.0/app-1.0.jar'), /also held/)
  assert.doesNotMatch(text('GET', '/api/v4/projects/5/releases'), /package rule/)
  // Conan's searches: the instance's and a project's, each its own rule; other Conan routes neither.
  assert.match(text('GET', '/api/v4/packages/conan/v1/conans/search?q=lib'), /^also held +.*CONAN_SEARCH_UNSCOPED/m)
  for (const version of ['v1', 'v2']) {
    assert.match(text('GET', `/api/v4/projects/5/packages/conan/${version}/conans/search?q=lib`), /^also held +.*CONAN_SEARCH_OTHER_PROJECT/m, version)
  }
  assert.doesNotMatch(text('GET', '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable'), /CONAN_SEARCH/)
})
