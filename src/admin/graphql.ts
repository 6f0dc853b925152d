// The configuration API over GraphQL (`POST /api/graphql`), with the `graphql` package.
// A request is the gate's when its document names the gate's fields (`jobTokenPermissions` on
// a project, the `updateJobTokenPermissions` mutation); it is then validated against the small
// schema below and answered here. A document without them is GitLab's and passes through
// untouched. A document with both cannot be split safely (one answer, one set of errors,
// GitLab's own field resolution): it is refused with 400, naming the fields.

import { buildSchema, execute, GraphQLError, parse, validate, visit, type DocumentNode, type GraphQLSchema } from 'graphql'
import type { ValidationIssue } from '../grants/errors.ts'
import type { ProjectGrants } from '../grants/model.ts'
import type { Caller } from './auth.ts'
import { AdminError, type AdminService } from './service.ts'
import { mergePackageRules, permissionsView } from './views.ts'

export const GATE_FIELDS = ['jobTokenPermissions', 'updateJobTokenPermissions'] as const

const SDL = `
  "Who may write or delete a format's packages: Maintainers only, or CI/CD job tokens too (within their allowlist policies)."
  enum JobTokenPackageLevel { MAINTAINER JOB_TOKEN_AND_MAINTAINER }

  type PackageFormatPermissions {
    format: String!
    read: Boolean!
    write: JobTokenPackageLevel!
    delete: JobTokenPackageLevel!
    "False when the project sets nothing for this format: GitLab's behaviour."
    configured: Boolean!
  }

  type JobTokenPermissions { packageRegistry: [PackageFormatPermissions!]! }

  type Project { jobTokenPermissions: JobTokenPermissions }

  type Query { project(fullPath: ID!): Project }

  "One format's settings; an omitted action is left as it is, null resets it to GitLab's behaviour."
  input PackageFormatPermissionsInput {
    format: String!
    read: Boolean
    write: JobTokenPackageLevel
    delete: JobTokenPackageLevel
  }

  input UpdateJobTokenPermissionsInput {
    projectPath: ID!
    packageRegistry: [PackageFormatPermissionsInput!]!
    clientMutationId: String
  }

  type UpdateJobTokenPermissionsPayload {
    jobTokenPermissions: JobTokenPermissions
    errors: [String!]!
    clientMutationId: String
  }

  type Mutation { updateJobTokenPermissions(input: UpdateJobTokenPermissionsInput!): UpdateJobTokenPermissionsPayload }
`

let schema: GraphQLSchema | null = null
function gateSchema (): GraphQLSchema {
  schema ??= buildSchema(SDL)
  return schema
}

export type Classification =
  | { readonly kind: 'gitlab' }
  | { readonly kind: 'gate', readonly document: DocumentNode, readonly variables: Record<string, unknown> | undefined, readonly operationName: string | undefined, readonly problems: readonly GraphQLError[] }
  | { readonly kind: 'mixed', readonly message: string }

/** Decides whose request a GraphQL body is. Anything the gate cannot read is GitLab's. */
export function classifyGraphql (body: Buffer): Classification {
  let payload: unknown
  try {
    payload = JSON.parse(body.toString('utf8'))
  } catch {
    return { kind: 'gitlab' }
  }
  if (Array.isArray(payload)) {
    // GitLab's multiplexed queries: each is one query; the gate answers none of them.
    const gate = payload.some(item => mentionsGateFields(documentOf(item)))
    return gate ? { kind: 'mixed', message: 'a batched (multiplexed) GraphQL request cannot contain the gate\'s fields; send them in a request of their own' } : { kind: 'gitlab' }
  }
  const document = documentOf(payload)
  if (document === null || !mentionsGateFields(document)) return { kind: 'gitlab' }
  const problems = validate(gateSchema(), document)
  const foreign = problems.filter(p => /^Cannot query field|^Unknown argument|^Unknown type/.test(p.message))
  if (foreign.length > 0) {
    return { kind: 'mixed', message: `this GraphQL request mixes the gate's fields (${GATE_FIELDS.join(', ')}) with GitLab fields; send them as separate requests (${foreign.map(p => p.message).join(' ')})` }
  }
  const p = payload as { variables?: unknown, operationName?: unknown }
  const variables = p.variables !== null && typeof p.variables === 'object' && !Array.isArray(p.variables) ? p.variables as Record<string, unknown> : undefined
  return { kind: 'gate', document, variables, operationName: typeof p.operationName === 'string' ? p.operationName : undefined, problems }
}

function documentOf (payload: unknown): DocumentNode | null {
  const query = (payload as { query?: unknown } | null)?.query
  if (typeof query !== 'string') return null
  try {
    return parse(query)
  } catch {
    return null
  }
}

function mentionsGateFields (document: DocumentNode | null): boolean {
  if (document === null) return false
  let found = false
  visit(document, {
    Field (node) {
      if ((GATE_FIELDS as readonly string[]).includes(node.name.value)) found = true
    }
  })
  return found
}

const LEVEL_IN: Record<string, string> = { MAINTAINER: 'maintainer', JOB_TOKEN_AND_MAINTAINER: 'job_token_and_maintainer' }
const LEVEL_OUT: Record<string, string> = { maintainer: 'MAINTAINER', job_token_and_maintainer: 'JOB_TOKEN_AND_MAINTAINER' }

function graphView (doc: ProjectGrants, formats: readonly string[]): { packageRegistry: unknown[] } {
  const view = permissionsView(doc, formats).package_registry as Record<string, { read: boolean, write: string, delete: string, configured: boolean }>
  return {
    packageRegistry: Object.entries(view).map(([format, e]) => ({ format, read: e.read, write: LEVEL_OUT[e.write], delete: LEVEL_OUT[e.delete], configured: e.configured }))
  }
}

function asGraphqlError (err: unknown): GraphQLError {
  if (err instanceof AdminError) return new GraphQLError(err.message, { extensions: { code: err.code } })
  return new GraphQLError('internal error', { extensions: { code: 'GATE_INTERNAL_ERROR' } })
}

/** Runs a gate-only operation; the answer is GraphQL's `{data, errors}` (HTTP 200). */
export async function executeGraphql (service: AdminService, request: Extract<Classification, { kind: 'gate' }>, caller: Caller, requestId: string): Promise<unknown> {
  if (request.problems.length > 0) return { errors: request.problems.map(p => p.toJSON()) }
  const formats = service.packageFormats()
  const rootValue = {
    async project ({ fullPath }: { fullPath: string }) {
      try {
        const access = await service.access(caller, encodeURIComponent(fullPath))
        return {
          async jobTokenPermissions () {
            const { doc } = await service.read(access.projectId, access.projectPath)
            return graphView(doc, formats)
          }
        }
      } catch (err) {
        throw asGraphqlError(err)
      }
    },
    async updateJobTokenPermissions ({ input }: { input: { projectPath: string, packageRegistry: Array<Record<string, unknown>>, clientMutationId?: string } }) {
      const clientMutationId = input.clientMutationId ?? null
      let access
      try {
        access = await service.access(caller, encodeURIComponent(input.projectPath))
      } catch (err) {
        throw asGraphqlError(err)
      }
      // The REST body, from the list of formats.
      const registry: Record<string, Record<string, unknown>> = {}
      const issues: ValidationIssue[] = []
      input.packageRegistry.forEach((item, i) => {
        const format = String(item.format)
        if (registry[format] !== undefined) issues.push({ path: `packageRegistry[${i}].format`, message: `lists "${format}" twice` })
        const rule: Record<string, unknown> = {}
        for (const action of ['read', 'write', 'delete']) {
          if (!(action in item)) continue
          const value = item[action]
          rule[action] = action === 'read' || value === null ? value : LEVEL_IN[String(value)]
        }
        registry[format] = rule
      })
      try {
        if (issues.length > 0) throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, issues)
        const doc = await service.update(access, 'update_job_token_permissions', requestId, current => {
          const found: ValidationIssue[] = []
          const rules = mergePackageRules({ package_registry: registry }, current.packageRules, formats, found)
          if (rules === null) throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, found)
          const { packageRules: _old, ...rest } = current
          return {
            doc: Object.keys(rules).length === 0 ? rest : { ...rest, packageRules: rules },
            before: { package_registry: current.packageRules ?? {} },
            after: { package_registry: rules }
          }
        })
        return { jobTokenPermissions: graphView(doc, formats), errors: [], clientMutationId }
      } catch (err) {
        // GitLab's mutations report user errors in the payload's `errors`, each naming its field.
        if (err instanceof AdminError && err.code === 'ADMIN_VALIDATION_FAILED') {
          return { jobTokenPermissions: null, errors: err.issues.map(i => `${i.path.replace(/^package_registry/, 'packageRegistry')} ${i.message}`), clientMutationId }
        }
        throw asGraphqlError(err)
      }
    }
  }
  return await execute({
    schema: gateSchema(),
    document: request.document,
    rootValue,
    variableValues: request.variables,
    operationName: request.operationName
  })
}
