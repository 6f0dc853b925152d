// The `job-token-gate` command. commander gives subcommands, generated --help and clear
// errors for unknown options, which a hand-rolled parser would have to grow one by one.

import { readFileSync, writeFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { CatalogError, DEFAULT_CATALOG_DIR, loadCatalog } from '../catalog/load.ts'
import { ImportError, importPages } from '../catalog/import.ts'
import { createCanonicalizer } from '../routing/canonical.ts'
import { explain, formatExplanation } from '../routing/explain.ts'
import { findOverlaps, formatOverlaps } from '../routing/lint.ts'
import { Router } from '../routing/router.ts'
import { ConfigError, describeSettings } from '../config.ts'
import { serve } from '../main.ts'

export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
}

const defaultIo: CliIo = {
  out: text => { process.stdout.write(text) },
  err: text => { process.stderr.write(text) }
}

function buildProgram (io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('job-token-gate')
    .description('Authorization sidecar that enforces GitLab CI/CD job token scopes')
    .option('--catalog <dir>', 'catalog directory (routes.json, policies.json)', DEFAULT_CATALOG_DIR)
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()

  const loadRouter = (): { router: Router, catalogDir: string } => {
    const catalogDir = program.opts<{ catalog: string }>().catalog
    return { router: Router.compile(loadCatalog(catalogDir).routes), catalogDir }
  }

  program.command('explain')
    .description('show how the gate reads a request: canonical path, route, parameters, policies, accessed project')
    .argument('<method>', 'HTTP method, e.g. GET')
    .argument('<path>', "request target as sent, e.g. '/api/v4/projects/1/packages'")
    .option('--json', 'print JSON')
    .option('--relative-url-root <root>', "GitLab's relative URL root, e.g. /gitlab", '')
    .action((method: string, target: string, opts: { json?: boolean, relativeUrlRoot: string }) => {
      const { router } = loadRouter()
      const canonicalize = createCanonicalizer({ relativeUrlRoot: opts.relativeUrlRoot })
      const result = explain(router, canonicalize(method, target))
      io.out(opts.json === true ? JSON.stringify(result, null, 2) + '\n' : formatExplanation(result))
      if (result.result !== 'matched') setExit(1)
    })

  program.command('serve')
    .description('run the gate: proxy API traffic, enforcing job token scopes (settings come from the environment)')
    .option('--config <file>', 'JSON file with settings (environment variables override it)')
    .addHelpText('after', '\n' + describeSettings() + '--catalog, when given, overrides GATE_CATALOG_DIR.\n')
    .action(async (opts: { config?: string }) => {
      // Only a --catalog actually given counts: its default would hide GATE_CATALOG_DIR.
      const catalogDir = program.getOptionValueSource('catalog') === 'cli' ? program.opts<{ catalog: string }>().catalog : undefined
      // The listeners keep the process alive; SIGTERM ends it (src/main.ts).
      await serve({
        ...(opts.config === undefined ? {} : { configFile: opts.config }),
        ...(catalogDir === undefined ? {} : { catalogDir })
      })
    })

  const catalog = program.command('catalog').description('build and check the endpoint catalog')
  catalog.command('import')
    .description('build routes.json from GitLab docs pages ("Fine-grained permissions for CI/CD job tokens"); several pages are merged')
    .argument('<pages...>', 'markdown files')
    .option('-o, --output <file>', 'write here instead of standard output')
    .action((pages: string[], opts: { output?: string }) => {
      const text = importPages(pages.map(source => ({ source, text: readFileSync(source, 'utf8') })))
      if (opts.output === undefined) io.out(text)
      else writeFileSync(opts.output, text)
    })
  catalog.command('lint')
    .description('validate the catalog and print every pair of overlapping routes and which one wins')
    .action(() => {
      const { router } = loadRouter()
      io.out(formatOverlaps(findOverlaps(router.routes, router)))
    })
  return program
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it. */
export async function runCli (argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let code = 0
  const program = buildProgram(io, c => { code = c })
  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
    if (err instanceof CatalogError || err instanceof ImportError || err instanceof ConfigError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      io.err(`job-token-gate: ${(err as Error).message}\n`)
      return 2
    }
    throw err
  }
  return code
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await runCli(process.argv.slice(2))
}
