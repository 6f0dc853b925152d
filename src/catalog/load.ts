// Loads the catalog, validates it against catalog/*.schema.json and the rules a schema cannot
// say (unique ids and routes, known policies, parsable patterns), and stops with a message that
// names the offending entry. Validation happens once at start-up; the router compiles the result.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { deepFreeze } from '../plain-data.ts'
import { parsePattern } from './pattern.ts'
import { accessedProjectOf, projectFromOf, routeFieldsProblem } from './import.ts'
import type { Catalog, CatalogRoute, PolicyList } from './types.ts'

export const DEFAULT_CATALOG_DIR = fileURLToPath(new URL('../../catalog/', import.meta.url))

export class CatalogError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CatalogError'
  }
}

let validators: { routes: ValidateFunction, policies: ValidateFunction } | undefined

function schemaValidators (): { routes: ValidateFunction, policies: ValidateFunction } {
  if (validators === undefined) {
    const ajv = new Ajv({ allErrors: true, strict: true })
    const read = (name: string): object => JSON.parse(readFileSync(join(DEFAULT_CATALOG_DIR, name), 'utf8')) as object
    validators = { routes: ajv.compile(read('routes.schema.json')), policies: ajv.compile(read('policies.schema.json')) }
  }
  return validators
}

function describeSchemaError (file: string, data: unknown, error: ErrorObject): string {
  const match = /^\/(routes|policies)\/(\d+)(.*)$/.exec(error.instancePath)
  if (match !== null) {
    const list = (data as Record<string, unknown[]>)[match[1]!]
    const entry = list?.[Number(match[2])] as { id?: unknown, name?: unknown } | undefined
    const name = entry?.id ?? entry?.name ?? `#${match[2]}`
    return `${file}: entry ${JSON.stringify(name)}${match[3] !== '' ? ` field ${match[3]!.slice(1)}` : ''} ${error.message ?? 'is invalid'}`
  }
  return `${file}: ${error.instancePath === '' ? 'document' : error.instancePath} ${error.message ?? 'is invalid'}`
}

function checkSchema (file: string, validate: ValidateFunction, data: unknown): void {
  if (!validate(data)) {
    const lines = (validate.errors ?? []).slice(0, 10).map(e => '  ' + describeSchemaError(file, data, e))
    throw new CatalogError(`invalid catalog:\n${lines.join('\n')}`)
  }
}

function checkPolicies (policies: PolicyList): Set<string> {
  const names = new Set<string>()
  for (const policy of policies.policies) {
    if (names.has(policy.name)) throw new CatalogError(`policies.json: policy "${policy.name}" is listed twice`)
    names.add(policy.name)
  }
  for (const policy of policies.policies) {
    if (policy.access === 'admin' && (policy.implies === undefined || !names.has(policy.implies))) {
      throw new CatalogError(`policies.json: admin policy "${policy.name}" must imply a listed read policy`)
    }
    if (policy.access === 'read' && policy.implies !== undefined) {
      throw new CatalogError(`policies.json: read policy "${policy.name}" cannot imply another`)
    }
  }
  return names
}

function checkRoutes (routes: readonly CatalogRoute[], known: Set<string>, deprecated: readonly string[]): void {
  const ids = new Set<string>()
  const keys = new Set<string>()
  for (const route of routes) {
    const where = `routes.json: entry "${route.id}"`
    if (ids.has(route.id)) throw new CatalogError(`${where}: id is used twice`)
    ids.add(route.id)
    const key = `${route.method} ${route.pattern}`
    if (keys.has(key)) throw new CatalogError(`${where}: ${key} is listed twice`)
    keys.add(key)
    for (const policy of route.policies) {
      if (deprecated.includes(policy)) throw new CatalogError(`${where}: policy "${policy}" is deprecated and not accepted`)
      if (!known.has(policy)) throw new CatalogError(`${where}: unknown policy "${policy}"`)
    }
    try {
      parsePattern(route.pattern)
    } catch (err) {
      throw new CatalogError(`${where}: ${(err as Error).message}`)
    }
    const expected = accessedProjectOf(route.pattern)
    if (route.accessedProject !== expected) {
      throw new CatalogError(`${where}: accessedProject is "${route.accessedProject}" but the pattern says "${expected}"`)
    }
    if (route.projectFrom !== projectFromOf(route.pattern)) {
      throw new CatalogError(`${where}: projectFrom is "${route.projectFrom ?? '(none)'}" but the pattern says "${projectFromOf(route.pattern) ?? '(none)'}"`)
    }
    // GitLab compares the job's project with the one `find_project!` resolves: /projects/:id only.
    if (route.jobTokenScope !== undefined && expected !== 'project') {
      throw new CatalogError(`${where}: jobTokenScope "${route.jobTokenScope}" needs a /projects/:id route`)
    }
    // The reads GitLab answers by a role's ability are marked in the catalog alone (roleAbility):
    // a catalog written before the field marks none, and loaded it let a job outside a public
    // project's allowlist read them. Every catalog built from the docs pages has a pipeline's reads.
    const problem = routeFieldsProblem(route)
    if (problem !== undefined) {
      throw new CatalogError(`${where}: ${problem}${route.roleAbility === undefined ? '; a catalog written before roleAbility marks none of the reads GitLab answers by a role: build it again with `job-token-gate catalog import`' : ''}`)
    }
  }
}

/** Validates parsed catalog documents; throws CatalogError naming the first bad entry. */
export function validateCatalog (routesDoc: unknown, policiesDoc: unknown): Catalog {
  const { routes, policies } = schemaValidators()
  checkSchema('policies.json', policies, policiesDoc)
  checkSchema('routes.json', routes, routesDoc)
  const policyList = policiesDoc as PolicyList
  const doc = routesDoc as { version: string, sources: string[], routes: CatalogRoute[] }
  checkRoutes(doc.routes, checkPolicies(policyList), policyList.deprecated)
  return deepFreeze({ version: doc.version, sources: doc.sources, routes: doc.routes, policies: policyList })
}

function readText (path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new CatalogError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

function parseJson (path: string, text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new CatalogError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
}

/**
 * The last catalog loaded and the text of its two files: the same text loaded again (another gate
 * of this process, a reload that changed nothing) is that catalog, not parsed and validated again.
 */
let last: { readonly routes: string, readonly policies: string, readonly catalog: Catalog } | undefined

/** Loads `routes.json` and `policies.json` from a catalog directory (default: the shipped one). */
export function loadCatalog (dir: string = DEFAULT_CATALOG_DIR): Catalog {
  const routesPath = join(dir, 'routes.json')
  const policiesPath = join(dir, 'policies.json')
  const routes = readText(routesPath)
  const policies = readText(policiesPath)
  if (last !== undefined && last.routes === routes && last.policies === policies) return last.catalog
  const catalog = validateCatalog(parseJson(routesPath, routes), parseJson(policiesPath, policies))
  last = { routes, policies, catalog }
  return catalog
}
