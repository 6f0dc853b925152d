// `job-token-gate graphql-schema save`: GitLab's GraphQL schema, from its introspection, as the
// SDL file GATE_GRAPHQL_SCHEMA and `explain-graphql --schema` read. The token comes from the
// environment only (GITLAB_TOKEN): an argument would show in `ps` and shell history.

import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { fetchGitlabSchema, SchemaFetchError } from '../graphql/schema.ts'

export interface SaveSchemaOptions {
  readonly url: string
  readonly output: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly timeoutMs?: number
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

/** Saves the schema; returns the exit code (1: GitLab gave no schema; the message says why). */
export async function runSaveSchema (options: SaveSchemaOptions): Promise<number> {
  if (options.timeoutMs !== undefined && !(Number.isSafeInteger(options.timeoutMs) && options.timeoutMs >= 1)) {
    options.err(`job-token-gate graphql-schema save: --timeout-ms must be a whole number of milliseconds, at least 1\n`)
    return 2
  }
  const token = options.env['GITLAB_TOKEN']
  if (token === undefined || token === '') options.err('job-token-gate graphql-schema save: GITLAB_TOKEN is not set: asking anonymously\n')
  let sdl: string
  try {
    sdl = await fetchGitlabSchema({
      url: options.url,
      ...(token === undefined || token === '' ? {} : { token }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })
    })
  } catch (err) {
    if (!(err instanceof SchemaFetchError)) throw err
    options.err(`job-token-gate graphql-schema save: ${err.message}\n`)
    return 1
  }
  // Written whole or not at all: a reader (a starting gate) never sees half a schema.
  const partial = `${options.output}.${process.pid}.partial`
  try {
    writeFileSync(partial, sdl)
    renameSync(partial, options.output)
  } catch (err) {
    rmSync(partial, { force: true })
    options.err(`job-token-gate graphql-schema save: cannot write ${options.output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`)
    return 1
  }
  const types = sdl.match(/^(?:type|interface|union|enum|input|scalar) /gm)?.length ?? 0
  options.out(`saved GitLab's GraphQL schema (${types} types, ${Buffer.byteLength(sdl)} bytes) to ${options.output}\n`)
  return 0
}
