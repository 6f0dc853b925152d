// The container image, without a container engine: the Dockerfile's steps are read from the
// Dockerfile and performed in a temporary directory that stands for each stage's root filesystem
// (COPY from the build context or the build stage, RUN with the stage's absolute paths moved
// under that root, WORKDIR, ENV, USER), then ENTRYPOINT + CMD start the gate with the image's
// environment, as the image's user when the test runs as root. Because the commands come from
// the Dockerfile, the test and the image cannot drift apart.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SETTINGS } from '../../src/config.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { eventually } from '../helpers/eventually.ts'
import { send } from '../helpers/http.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Instruction { readonly op: string, readonly args: string }
interface Stage { readonly from: string, readonly name: string | undefined, readonly steps: Instruction[] }

/** Instructions of a Dockerfile: comments dropped, continuation lines joined. */
export function parseDockerfile (text: string): { args: Map<string, string>, stages: Stage[] } {
  const logical: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (pending === '' && (line === '' || line.startsWith('#'))) continue
    if (line.startsWith('#')) continue
    if (line.endsWith('\\')) { pending += line.slice(0, -1) + ' '; continue }
    logical.push(pending + line)
    pending = ''
  }
  const args = new Map<string, string>()
  const stages: Stage[] = []
  for (const line of logical) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(line)!
    const instruction = { op: op!.toUpperCase(), args: rest!.trim() }
    if (instruction.op === 'FROM') {
      const [from, as, name] = instruction.args.split(/\s+/)
      stages.push({ from: from!.replace(/\$\{(\w+)\}/g, (_, v: string) => args.get(v) ?? ''), name: as?.toUpperCase() === 'AS' ? name : undefined, steps: [] })
    } else if (stages.length === 0) {
      assert.equal(instruction.op, 'ARG', `only ARG may come before FROM, got ${instruction.op}`)
      const [k, v] = instruction.args.split('=')
      args.set(k!, v ?? '')
    } else {
      stages.at(-1)!.steps.push(instruction)
    }
  }
  return { args, stages }
}

const jsonArray = (args: string): string[] => JSON.parse(args) as string[]

/** ENV k=v [k=v ...] (values without spaces, as this Dockerfile writes them). */
function parseEnv (args: string): Array<[string, string]> {
  return args.split(/\s+/).map(pair => {
    const at = pair.indexOf('=')
    assert.ok(at > 0, `ENV ${args}: use key=value`)
    return [pair.slice(0, at), pair.slice(at + 1)]
  })
}

/** The build context that .dockerignore leaves: this Dockerfile's form, "*" then "!path". */
function contextIncludes (path: string): boolean {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  assert.equal(lines[0], '*', '.dockerignore starts by excluding everything')
  const wanted = path.replace(/\/$/, '')
  return lines.slice(1).some(l => l.startsWith('!') && l.slice(1).replace(/\/$/, '') === wanted)
}

function run (command: string, cwd: string, env: NodeJS.ProcessEnv): void {
  const result = spawnSync('sh', ['-c', command], { cwd, env, encoding: 'utf8' })
  assert.equal(result.status, 0, `RUN ${command} failed:\n${result.stdout}\n${result.stderr}`)
}

/** Every file under a directory with its size and modification time. */
function snapshot (dir: string, skip: string): Map<string, string> {
  const files = new Map<string, string>()
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    if (path.startsWith(skip)) continue
    const st = statSync(path, { throwIfNoEntry: false })
    if (st !== undefined) files.set(path, `${st.size}:${st.mtimeMs}`)
  }
  return files
}

const listenPort = (value: string): number => Number(value.slice(value.lastIndexOf(':') + 1))

test('the Dockerfile: two stages on a slim Node 20 image, non-root, a volume for the state file, both ports, SIGTERM, job-token-gate serve', () => {
  const { stages } = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  assert.equal(stages.length, 2)
  const [build, runtime] = stages as [Stage, Stage]
  assert.equal(build.name, 'build')
  for (const stage of stages) assert.match(stage.from, /^node:20-[a-z]+-slim$/)
  const last = (op: string): string | undefined => runtime.steps.filter(s => s.op === op).at(-1)?.args
  const user = last('USER')
  assert.ok(user !== undefined && /^[1-9]\d*:[1-9]\d*$/.test(user), `numeric non-root USER, got ${String(user)}`)
  assert.deepEqual(jsonArray(last('ENTRYPOINT')!), ['job-token-gate'])
  assert.deepEqual(jsonArray(last('CMD')!), ['serve'])
  assert.equal(last('STOPSIGNAL'), 'SIGTERM')
  // The image listens where the configuration's defaults say (no ENV overrides them).
  const env = new Map(runtime.steps.filter(s => s.op === 'ENV').flatMap(s => parseEnv(s.args)))
  const exposed = last('EXPOSE')!.split(/\s+/).map(Number).sort()
  const api = listenPort(env.get(SETTINGS.listen.env) ?? SETTINGS.listen.default)
  const health = listenPort(env.get(SETTINGS.healthListen.env) ?? SETTINGS.healthListen.default)
  assert.deepEqual(exposed, [api, health].sort())
  // The dev tools stay in the build stage: the runtime stage takes node_modules only after the prune.
  const buildRuns = build.steps.filter(s => s.op === 'RUN').map(s => s.args)
  assert.ok(buildRuns.some(r => r.startsWith('npm ci')))
  assert.ok(buildRuns.at(-1)!.startsWith('npm prune --omit=dev'), 'the last build step prunes dev dependencies')
  assert.ok(runtime.steps.some(s => s.op === 'COPY' && s.args.startsWith('--from=build /app/node_modules/')))
  assert.ok(!runtime.steps.some(s => s.op === 'RUN' && /\bnpm\b/.test(s.args)), 'nothing is installed in the runtime stage')
  assert.equal(jsonArray(last('VOLUME')!).length, 1)
})

test('the Dockerfile steps, performed in a temporary directory, give a gate that serves /-/readiness with a read-only root', async (t) => {
  const { stages } = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  const tmp = mkdtempSync(join(tmpdir(), 'jtg-image-'))
  t.after(() => rmSync(tmp, { recursive: true, force: true }))
  chmodSync(tmp, 0o755)
  const asRoot = process.getuid?.() === 0

  const roots = new Map<string, string>()
  let imageEnv: Record<string, string> = {}
  let workdir = '/'
  let user = ''
  let volume = ''
  let command: string[] = []
  for (const [index, stage] of stages.entries()) {
    const root = join(tmp, stage.name ?? `stage${index}`)
    roots.set(stage.name ?? String(index), root)
    // What the base image provides and these steps use.
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true })
    const inRoot = (path: string): string => join(root, path)
    workdir = '/'
    imageEnv = {}
    let entrypoint: string[] = []
    let cmd: string[] = []
    for (const { op, args } of stage.steps) {
      const cwd = inRoot(workdir)
      if (op === 'WORKDIR') {
        workdir = args
        mkdirSync(inRoot(workdir), { recursive: true })
      } else if (op === 'COPY') {
        const words = args.split(/\s+/)
        const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined
        const dest = words.pop()!
        for (const source of words) {
          let src: string
          if (from === undefined) {
            assert.ok(contextIncludes(source), `${source} is in the build context (.dockerignore)`)
            src = join(ROOT, source)
          } else {
            src = join(roots.get(from)!, source)
          }
          const target = dest.startsWith('/') ? inRoot(dest) : join(cwd, dest)
          const into = statSync(src).isDirectory() ? target : (dest.endsWith('/') || dest === '.' ? join(target, basename(source)) : target)
          cpSync(src, into, { recursive: true })
        }
      } else if (op === 'RUN') {
        // The stage's absolute paths, moved under its root; the image's user is this test's
        // user when the test cannot switch users.
        let line = args.replace(/(^|\s)\/(?=[a-z])/g, `$1${root}/`)
        if (!asRoot) line = line.replace(/\bchown \d+:\d+/g, `chown ${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`)
        const env: NodeJS.ProcessEnv = { ...process.env, ...imageEnv }
        for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key]
        run(line, cwd, env)
      } else if (op === 'ENV') {
        for (const [k, v] of parseEnv(args)) imageEnv[k] = v
      } else if (op === 'USER') {
        user = args
      } else if (op === 'VOLUME') {
        volume = jsonArray(args)[0]!
      } else if (op === 'ENTRYPOINT') {
        entrypoint = jsonArray(args)
      } else if (op === 'CMD') {
        cmd = jsonArray(args)
      } else {
        assert.ok(['EXPOSE', 'STOPSIGNAL', 'ARG', 'LABEL'].includes(op), `the test performs ${op}`)
      }
    }
    command = [...entrypoint, ...cmd]
  }
  const root = [...roots.values()].at(-1)!
  assert.equal(existsSync(join(root, 'app/node_modules/typescript')), false, 'dev dependencies pruned')
  assert.equal(existsSync(join(root, 'app/node_modules/tsx')), false, 'dev dependencies pruned')
  assert.ok(existsSync(join(root, 'app/dist/cli/main.js')))
  const volumeDir = join(root, volume)

  const gitlab = await startFakeGitlab({
    projects: [
      { id: 100, pathWithNamespace: 'acme/app', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } },
      { id: 200, pathWithNamespace: 'acme/lib', namespace: { id: 10, kind: 'group', fullPath: 'acme', parentId: null } }
    ],
    groups: [{ id: 10, fullPath: 'acme', parentId: null }]
  })
  t.after(() => gitlab.close())
  const before = snapshot(root, volumeDir)
  const [uid, gid] = user.split(':').map(Number)
  const adminToken = 'operator-token-for-the-image-test'
  const child = spawn(command[0]!, command.slice(1), {
    cwd: join(root, workdir),
    env: {
      ...imageEnv,
      PATH: `${join(root, 'usr/local/bin')}:${process.env.PATH ?? ''}`,
      GATE_UPSTREAM_URL: gitlab.url,
      GATE_SERVICE_TOKEN: gitlab.serviceToken,
      GATE_ADMIN_TOKEN: adminToken,
      GATE_LISTEN: '127.0.0.1:0',
      GATE_HEALTH_LISTEN: '127.0.0.1:0',
      GATE_STATE_FILE: join(volumeDir, 'grants.json')
    },
    ...(asRoot ? { uid, gid } : {}),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const ready = await eventually(() => out.split('\n').filter(l => l.includes('job-token-gate ready')).map(l => JSON.parse(l) as { listen: string, health: string })[0], { timeoutMs: 30_000, message: `the gate to start (stderr: ${err})` })
  const readiness = await send(`http://${ready.health}`, 'GET', '/-/readiness')
  assert.equal(readiness.status, 200, readiness.text)

  // The one write the image allows: the grants file, in the volume.
  const created = await send(`http://${ready.listen}`, 'POST', '/api/v4/projects/200/job_token_scope/allowlist',
    { 'private-token': adminToken, 'content-type': 'application/json' }, JSON.stringify({ target_project_id: 100 }))
  assert.equal(created.status, 201, created.text)
  assert.match(readFileSync(join(volumeDir, 'grants.json'), 'utf8'), /"projectId": 200/)

  child.kill('SIGTERM')
  assert.equal(await exited, 0, err)
  assert.deepEqual(snapshot(root, volumeDir), before, 'nothing outside the volume was written')
})
