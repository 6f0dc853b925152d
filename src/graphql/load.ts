// Loads catalog/graphql-permissions.json, validated against its schema with Ajv as the REST
// catalog is (src/catalog/load.ts), plus what a schema cannot say: each permission name follows
// from its action and resource, and no row is listed twice.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import { CatalogError, DEFAULT_CATALOG_DIR } from '../catalog/load.ts'
import { deepFreeze } from '../plain-data.ts'
import { mutationFieldName, permissionName, type GraphqlCatalog, type GraphqlPermissionEntry } from './catalog.ts'

export const GRAPHQL_CATALOG_FILE = 'graphql-permissions.json'

let validator: ValidateFunction | undefined

function schemaValidator (): ValidateFunction {
  if (validator === undefined) {
    const schema = JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, 'graphql-permissions.schema.json'), 'utf8')) as object
    validator = new Ajv({ allErrors: true, strict: true }).compile(schema)
  }
  return validator
}

/** Validates a parsed graphql-permissions.json; throws CatalogError naming the first bad entry. */
export function validateGraphqlCatalog (doc: unknown): GraphqlCatalog {
  const validate = schemaValidator()
  if (!validate(doc)) {
    const lines = (validate.errors ?? []).slice(0, 10).map(e => `  ${GRAPHQL_CATALOG_FILE}: ${e.instancePath === '' ? 'document' : e.instancePath} ${e.message ?? 'is invalid'}`)
    throw new CatalogError(`invalid catalog:\n${lines.join('\n')}`)
  }
  const catalog = doc as { version: string, sources: string[], entries: GraphqlPermissionEntry[] }
  const keys = new Set<string>()
  catalog.entries.forEach((entry, i) => {
    const where = `${GRAPHQL_CATALOG_FILE}: entry ${i} (${entry.graphqlName})`
    const expected = permissionName(entry.action, entry.resource)
    if (entry.permission !== expected) throw new CatalogError(`${where}: permission is "${entry.permission}" but action and resource say "${expected}"`)
    if (entry.kind === 'Mutation' && entry.graphqlName !== mutationFieldName(entry.pageName)) throw new CatalogError(`${where}: mutation field should be "${mutationFieldName(entry.pageName)}"`)
    const key = `${entry.permission} ${entry.boundary} ${entry.kind} ${entry.graphqlName}`
    if (keys.has(key)) throw new CatalogError(`${where}: listed twice`)
    keys.add(key)
  })
  return deepFreeze({ version: catalog.version, sources: catalog.sources, entries: catalog.entries })
}

/** Loads graphql-permissions.json from a catalog directory (default: the shipped one). */
export function loadGraphqlCatalog (dir: string = DEFAULT_CATALOG_DIR): GraphqlCatalog {
  const path = join(dir, GRAPHQL_CATALOG_FILE)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new CatalogError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new CatalogError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
  return validateGraphqlCatalog(doc)
}
