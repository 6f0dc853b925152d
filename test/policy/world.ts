// What the decide() tables share: the shipped catalog and its policy index, a catalog route by
// id, a route with no policies that does not skip them (as the catalog's authenticate_with
// routes), built from READ_PACKAGES so that only the policies differ, and the job: project 100
// (acme/sub/job) in subgroup 20, in group 10, in root group 1, accessing 500.

import assert from 'node:assert/strict'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { createPolicyIndex } from '../../src/catalog/policy-index.ts'
import type { DecisionSubject } from '../../src/policy/decide.ts'

export const catalog = loadCatalog()
export const policies = createPolicyIndex(catalog.policies)

export function catalogRoute (id: string): CatalogRoute {
  const found = catalog.routes.find(r => r.id === id)
  assert.ok(found, id)
  return found
}

export const READ_PACKAGES = catalogRoute('get_projects_id_packages')
export const CREATE_DEPLOYMENT = catalogRoute('post_projects_id_deployments')
export const NO_POLICIES: CatalogRoute = { ...READ_PACKAGES, id: 'synthetic_no_policies', policies: [], skipPolicies: false }

export const JOB: DecisionSubject = { jobProjectId: 100, jobProjectPath: 'acme/sub/job', ancestorGroupIds: [20, 10, 1] }
export const ACCESSED = 500
