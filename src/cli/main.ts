// The `job-token-gate` command. commander gives subcommands, generated --help and clear
// errors for unknown options, which a hand-rolled parser would have to grow one by one.
//
// Only commander is imported up front: each subcommand imports what it needs when it runs, so
// `--help` does not load the gate, Ajv or the router (bench/cli-start.ts measures it).

import { Command, CommanderError } from 'commander'

export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
}

const defaultIo: CliIo = {
  out: text => { process.stdout.write(text) },
  err: text => { process.stderr.write(text) }
}

/** Errors a user can fix (a bad catalog, page, setting or path): one line, exit 2, no stack. */
const USER_ERRORS = new Set(['CatalogError', 'ImportError', 'ConfigError', 'GraphqlDocumentError'])
const START_ERRORS = new Set(['GrantsError', 'GrantsStoreUnavailableError', 'GrantsValidationError'])

function buildProgram (io: CliIo, setExit: (code: number) => void, env: Readonly<Record<string, string | undefined>>): Command {
  const program = new Command('job-token-gate')
    .description('Authorization sidecar that enforces GitLab CI/CD job token scopes')
    .option('--catalog <dir>', 'catalog directory (routes.json, policies.json) [default: the catalog/ shipped with the gate]')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()

  /** The --catalog actually given, if any. */
  const catalogFlag = (): string | undefined => program.opts<{ catalog?: string }>().catalog

  const loadRouter = async (): Promise<import('../routing/router.ts').Router> => {
    const [{ DEFAULT_CATALOG_DIR, loadCatalog }, { Router }] = await Promise.all([import('../catalog/load.ts'), import('../routing/router.ts')])
    return Router.compile(loadCatalog(catalogFlag() ?? DEFAULT_CATALOG_DIR).routes)
  }

  program.command('explain')
    .description('show how the gate reads a request: canonical path, route, parameters, policies, accessed project')
    .argument('<method>', 'HTTP method, e.g. GET')
    .argument('<path>', "request target as sent, e.g. '/api/v4/projects/1/packages'")
    .option('--json', 'print JSON')
    .option('--relative-url-root <root>', "GitLab's relative URL root, e.g. /gitlab", '')
    .action(async (method: string, target: string, opts: { json?: boolean, relativeUrlRoot: string }) => {
      const [router, { createCanonicalizer }, { explain, formatExplanation }] = await Promise.all([loadRouter(), import('../routing/canonical.ts'), import('../routing/explain.ts')])
      const canonicalize = createCanonicalizer({ relativeUrlRoot: opts.relativeUrlRoot })
      const result = explain(router, canonicalize(method, target))
      io.out(opts.json === true ? JSON.stringify(result, null, 2) + '\n' : formatExplanation(result))
      if (result.result !== 'matched') setExit(1)
    })

  program.command('explain-graphql')
    .description('show what a GraphQL document touches that the GraphQL catalog lists (fine-grained personal access tokens), the permission each needs and the project or group it applies to')
    .argument('[file]', 'the GraphQL document; standard input when absent or -')
    .option('--variables <json|file>', 'variables: a JSON object, or a file holding one')
    .option('--operation-name <name>', 'explain only this operation')
    .option('--schema <file>', "GitLab's schema as SDL, to match types and nested fields [default: GATE_GRAPHQL_SCHEMA]")
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, opts: { variables?: string, operationName?: string, schema?: string, json?: boolean }) => {
      const [{ readFileSync }, { DEFAULT_CATALOG_DIR }, { loadGraphqlCatalog }, explain] = await Promise.all([
        import('node:fs'), import('../catalog/load.ts'), import('../graphql/load.ts'), import('../graphql/explain.ts')
      ])
      const text = file === undefined || file === '-' ? await readStdin() : readFileSync(file, 'utf8')
      const document = explain.parseDocument(text, file ?? 'stdin')
      const schemaFile = opts.schema ?? env['GATE_GRAPHQL_SCHEMA']
      const schema = schemaFile === undefined || schemaFile === '' ? undefined : explain.parseSchema(readFileSync(schemaFile, 'utf8'), schemaFile)
      let variables: Record<string, unknown> = {}
      if (opts.variables !== undefined) {
        const raw = opts.variables.trimStart().startsWith('{') ? opts.variables : readFileSync(opts.variables, 'utf8')
        let parsed: unknown
        try {
          parsed = JSON.parse(raw)
        } catch (err) {
          throw new explain.GraphqlDocumentError(`--variables: not valid JSON: ${(err as Error).message}`)
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new explain.GraphqlDocumentError('--variables: must be a JSON object')
        variables = parsed as Record<string, unknown>
      }
      const index = new explain.GraphqlCatalogIndex(loadGraphqlCatalog(catalogFlag() ?? DEFAULT_CATALOG_DIR))
      const result = explain.explainGraphql(document, index, {
        variables,
        ...(schema === undefined ? {} : { schema }),
        ...(opts.operationName === undefined ? {} : { operationName: opts.operationName })
      })
      io.out(opts.json === true ? JSON.stringify(result, null, 2) + '\n' : explain.formatGraphqlExplanation(result))
    })

  program.command('serve')
    .description('run the gate: proxy API traffic, enforcing job token scopes (settings come from the environment)')
    .option('--config <file>', 'JSON file with settings (environment variables override it)')
    .action(async (opts: { config?: string }) => {
      // Only a --catalog actually given counts, over GATE_CATALOG_DIR and the config file.
      const catalogDir = catalogFlag()
      const { serve } = await import('../main.ts')
      // The listeners keep the process alive; SIGTERM ends it (src/main.ts).
      await serve({
        ...(opts.config === undefined ? {} : { configFile: opts.config }),
        ...(catalogDir === undefined ? {} : { catalogDir })
      })
    })

  program.command('import-allowlists')
    .description("copy each project's job token allowlist (inbound setting, projects, groups, fine-grained policies) from GitLab into the gate's store (settings come from the environment)")
    .requiredOption('--from-gitlab', 'read the allowlists from GitLab (GATE_UPSTREAM_URL, GATE_SERVICE_TOKEN)')
    .option('--project <id|path>', 'import this project only (repeatable); default: every project the service token can see', (value: string, list: string[] | undefined) => [...(list ?? []), value])
    .option('--dry-run', 'print what would be written, write nothing')
    .option('--replace-changed', "replace also the projects whose allowlist was changed through the gate's configuration API since it was last imported (left alone otherwise: GitLab's copy is stale once the gate enforces)")
    .option('--config <file>', 'JSON file with settings (environment variables override it)')
    .action(async (opts: { project?: string[], dryRun?: boolean, replaceChanged?: boolean, config?: string }) => {
      const [{ runImportCommand }, { AllowlistImportError }] = await Promise.all([import('./import-allowlists.ts'), import('../admin/import.ts')])
      const catalogDir = catalogFlag()
      try {
        await runImportCommand({
          env,
          projects: opts.project ?? [],
          dryRun: opts.dryRun === true,
          replaceChanged: opts.replaceChanged === true,
          out: io.out,
          log: io.err,
          ...(opts.config === undefined ? {} : { configFile: opts.config }),
          ...(catalogDir === undefined ? {} : { catalogDir })
        })
      } catch (err) {
        if (!(err instanceof AllowlistImportError)) throw err
        io.err(`job-token-gate import-allowlists: ${err.message}\n`)
        setExit(1)
      }
    })

  program.command('accept-store-loss')
    .description('after Redis lost what the gate wrote (GRANTS_STORE_LOST): let the replicas decide again on what it holds now, by writing the store marker back (settings come from the environment)')
    .option('--marker <id>', 'the store id the refusing replicas log; default: the one the remaining markers hold')
    .option('--config <file>', 'JSON file with settings (environment variables override it)')
    .action(async (opts: { marker?: string, config?: string }) => {
      const { runAcceptStoreLoss } = await import('./accept-store-loss.ts')
      setExit(await runAcceptStoreLoss({ env, out: io.out, err: io.err, ...(opts.marker === undefined ? {} : { marker: opts.marker }), ...(opts.config === undefined ? {} : { configFile: opts.config }) }))
    })

  program.command('graphql-schema')
    .description("GitLab's GraphQL schema, as the SDL file GATE_GRAPHQL_SCHEMA names")
    .command('save')
    .description("save GitLab's GraphQL schema as SDL, read from its introspection (token from GITLAB_TOKEN, never an argument)")
    .requiredOption('--url <url>', "GitLab's base URL, e.g. https://gitlab.example.com")
    .requiredOption('-o, --output <file>', 'the SDL file to write')
    .option('--timeout-ms <ms>', 'wait this long for GitLab', '60000')
    .action(async (opts: { url: string, output: string, timeoutMs: string }) => {
      const { runSaveSchema } = await import('./graphql-schema.ts')
      setExit(await runSaveSchema({ url: opts.url, output: opts.output, env, timeoutMs: Number(opts.timeoutMs), out: io.out, err: io.err }))
    })

  /** A catalog file built from the files named: printed, or written to --output. */
  const buildFile = async (files: readonly string[], output: string | undefined, build: (sources: Array<{ source: string, text: string }>) => string): Promise<void> => {
    const { readFileSync, writeFileSync } = await import('node:fs')
    const text = build(files.map(source => ({ source, text: readFileSync(source, 'utf8') })))
    if (output === undefined) io.out(text)
    else writeFileSync(output, text)
  }

  const catalog = program.command('catalog').description('build and check the endpoint catalog')
  catalog.command('import')
    .description('build routes.json from GitLab docs pages ("Fine-grained permissions for CI/CD job tokens") and route lists read from GitLab\'s source; all are merged')
    .argument('<sources...>', 'docs pages (.md) and source route lists (.json, as catalog/sources/gitlab-source-routes.json)')
    .option('-o, --output <file>', 'write here instead of standard output')
    .action(async (sources: string[], opts: { output?: string }) => {
      const { importPages } = await import('../catalog/import.ts')
      await buildFile(sources, opts.output, importPages)
    })
  catalog.command('import-graphql')
    .description('build graphql-permissions.json from GitLab docs pages ("Fine-grained permissions for personal access tokens in the GraphQL API")')
    .argument('<pages...>', 'page files')
    .option('-o, --output <file>', 'write here instead of standard output')
    .action(async (pages: string[], opts: { output?: string }) => {
      const { importGraphqlPages } = await import('../graphql/catalog.ts')
      await buildFile(pages, opts.output, importGraphqlPages)
    })
  catalog.command('lint')
    .description('validate the catalog and print every pair of overlapping routes and which one wins (--graphql: GraphQL names listed under two permissions)')
    .option('--graphql', 'lint graphql-permissions.json instead of the routes')
    .action(async (opts: { graphql?: boolean }) => {
      if (opts.graphql === true) {
        const [{ DEFAULT_CATALOG_DIR }, { loadGraphqlCatalog }, { findSharedNames, formatSharedNames }] = await Promise.all([import('../catalog/load.ts'), import('../graphql/load.ts'), import('../graphql/catalog.ts')])
        io.out(formatSharedNames(findSharedNames(loadGraphqlCatalog(catalogFlag() ?? DEFAULT_CATALOG_DIR).entries)))
        return
      }
      const [router, { findOverlaps, formatOverlaps }] = await Promise.all([loadRouter(), import('../routing/lint.ts')])
      io.out(formatOverlaps(findOverlaps(router.routes, router)))
    })
  return program
}

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** `serve --help` lists every setting; the table is loaded only when that help is asked for. */
async function addServeSettingsHelp (program: Command, argv: readonly string[]): Promise<void> {
  if (!argv.includes('serve') || !(argv.includes('--help') || argv.includes('-h') || argv.includes('help'))) return
  const { describeSettings } = await import('../config.ts')
  program.commands.find(c => c.name() === 'serve')
    ?.addHelpText('after', '\n' + describeSettings() + '--catalog, when given, overrides GATE_CATALOG_DIR.\n')
}

/**
 * Runs the CLI; returns the exit code instead of exiting, so tests can call it. `env` is where
 * import-allowlists reads its settings, explain-graphql GATE_GRAPHQL_SCHEMA and graphql-schema
 * GITLAB_TOKEN (serve reads process.env itself, in src/main.ts).
 */
export async function runCli (argv: readonly string[], io: CliIo = defaultIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  let code = 0
  const program = buildProgram(io, c => { code = c }, env)
  try {
    await addServeSettingsHelp(program, argv)
    await program.parseAsync([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
    if (USER_ERRORS.has((err as Error).name) || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      io.err(`job-token-gate: ${(err as Error).message}\n`)
      return 2
    }
    // A store that cannot be reached or read at start (Redis down, a state file that does not
    // parse): one line naming it, exit 1, for a supervisor to restart; not a stack trace.
    if (START_ERRORS.has((err as Error).name)) {
      io.err(`job-token-gate: cannot start: ${(err as Error).message}\n`)
      return 1
    }
    throw err
  }
  return code
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await runCli(process.argv.slice(2))
}
