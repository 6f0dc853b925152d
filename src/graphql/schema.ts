// GitLab's GraphQL schema for the gate: loaded from an SDL file at start (GATE_GRAPHQL_SCHEMA),
// and saved from a running GitLab by `job-token-gate graphql-schema save`, which asks GitLab's
// /api/graphql the standard introspection query and prints the answer as SDL.

import { readFileSync } from 'node:fs'
import { buildClientSchema, getIntrospectionQuery, printSchema, type GraphQLSchema, type IntrospectionQuery } from 'graphql'
import { request } from 'undici'
import { ConfigError, withoutCredentials } from '../config.ts'
import { parseSchema } from './explain.ts'

/** Reads and builds the SDL file GATE_GRAPHQL_SCHEMA names; a file missing or not a schema stops the start. */
export function loadGraphqlSchema (path: string): GraphQLSchema {
  let sdl: string
  try {
    sdl = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`GATE_GRAPHQL_SCHEMA: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return parseSchema(sdl, path)
  } catch (err) {
    throw new ConfigError(`GATE_GRAPHQL_SCHEMA: ${(err as Error).message}`)
  }
}

export class SchemaFetchError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SchemaFetchError'
  }
}

export interface FetchSchemaOptions {
  /** GitLab's base URL, relative URL root included: https://gitlab.example.com or http://host/gitlab. */
  readonly url: string
  /** A personal access token (read_api); anonymous when absent. Sent as a header, never logged. */
  readonly token?: string
  readonly timeoutMs?: number
}

/** The introspection answer, read from `<url>/api/graphql`. */
async function introspect (endpoint: string, token: string | undefined, timeoutMs: number, inputValueDeprecation: boolean): Promise<{ data?: IntrospectionQuery, errors?: string[] }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`
  // GitLab recognises (and caches) the operation by this name (GraphqlController, INTROSPECTION_QUERY_OPERATION_NAME).
  const body = JSON.stringify({ query: getIntrospectionQuery({ inputValueDeprecation }), operationName: 'IntrospectionQuery' })
  let response: Awaited<ReturnType<typeof request>>
  try {
    response = await request(endpoint, { method: 'POST', headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new SchemaFetchError(`cannot reach GitLab at ${endpoint}: ${code ?? (err as Error).message}`)
  }
  const text = await response.body.text().catch((err: Error) => { throw new SchemaFetchError(`${endpoint}: the answer was cut off: ${err.message}`) })
  const status = response.statusCode
  if (status === 401) throw new SchemaFetchError(`${endpoint} answered 401 Unauthorized: ${token === undefined ? 'this GitLab needs a token; set GITLAB_TOKEN to' : 'GITLAB_TOKEN is not accepted; it must be'} a personal access token with the read_api scope`)
  if (status === 403) throw new SchemaFetchError(`${endpoint} answered 403 Forbidden: the token may not use the API (it needs the read_api scope)`)
  if (status >= 300 && status < 400) throw new SchemaFetchError(`${endpoint} answered ${status}, a redirect to ${String(response.headers['location'] ?? 'nowhere')}: give --url as GitLab's base URL, with https:// if it redirects there`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new SchemaFetchError(`${endpoint} did not answer GraphQL (HTTP ${status}, ${String(response.headers['content-type'] ?? 'no content type')}): is --url GitLab's base URL?`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SchemaFetchError(`${endpoint} did not answer GraphQL (HTTP ${status}, a JSON ${Array.isArray(parsed) ? 'array' : typeof parsed})`)
  const { data, errors } = parsed as { data?: unknown, errors?: unknown }
  const messages = Array.isArray(errors) ? errors.map(e => String((e as { message?: unknown })?.message ?? JSON.stringify(e))) : undefined
  if (status !== 200 && messages === undefined) throw new SchemaFetchError(`${endpoint} answered HTTP ${status}`)
  const schemaData = data !== null && typeof data === 'object' && '__schema' in data ? data as IntrospectionQuery : undefined
  return { ...(schemaData === undefined ? {} : { data: schemaData }), ...(messages === undefined ? {} : { errors: messages }) }
}

/**
 * GitLab's schema as SDL: the introspection query (with deprecated arguments and input fields;
 * asked again without them of a GitLab that does not know `includeDeprecated` there), built with
 * buildClientSchema and printed with printSchema.
 */
export async function fetchGitlabSchema (options: FetchSchemaOptions): Promise<string> {
  let base: URL
  try {
    base = new URL(options.url)
  } catch {
    // A URL with a token in it (`https://oauth2:glpat-...@gitlab`, as git takes one) is printed without.
    throw new SchemaFetchError(`--url must be GitLab's base URL, e.g. https://gitlab.example.com, got ${JSON.stringify(withoutCredentials(options.url))}`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new SchemaFetchError(`--url must be an http or https URL, got ${JSON.stringify(withoutCredentials(options.url))}`)
  if (base.username !== '' || base.password !== '') throw new SchemaFetchError('--url must not carry credentials: set GITLAB_TOKEN instead')
  const endpoint = `${base.origin}${base.pathname.replace(/\/+$/, '')}/api/graphql`
  const timeoutMs = options.timeoutMs ?? 60_000

  let answer = await introspect(endpoint, options.token, timeoutMs, true)
  if (answer.data === undefined && answer.errors !== undefined) answer = await introspect(endpoint, options.token, timeoutMs, false)
  if (answer.data === undefined) {
    const why = answer.errors === undefined ? 'an answer without data.__schema' : `errors: ${answer.errors.slice(0, 3).join('; ')}`
    throw new SchemaFetchError(`${endpoint} did not answer the introspection query (${why})`)
  }
  let schema: GraphQLSchema
  try {
    schema = buildClientSchema(answer.data)
  } catch (err) {
    throw new SchemaFetchError(`${endpoint} answered an introspection that does not build a schema: ${(err as Error).message}`)
  }
  return printSchema(schema) + '\n'
}
