// Moved to src/catalog/policy-index.ts (the policy list is catalog data). Kept until every
// importer names the new path.
export * from '../catalog/policy-index.ts'
