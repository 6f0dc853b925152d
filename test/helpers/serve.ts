// The `serve` process of a test: started from the sources, its log lines read as they come,
// stopped with the test.

import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startFakeGitlab, type FakeGitlab } from './fake-gitlab.ts'

// The CLI from its sources (tsx), not bin/ (which runs dist/): a stale or missing build cannot change what this tests.
export const CLI_FROM_SOURCES = ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))]

export interface Served {
  readonly child: ChildProcessByStdio<null, Readable, Readable>
  readonly api: string
  readonly health: string
  /** Lines read so far (until the reader is closed). */
  readonly lines: Array<Record<string, unknown>>
  /** The first line with this `msg`, once it is read; rejects when serve exits first or after timeoutMs (a hang detector). */
  waitForLine (msg: string, timeoutMs?: number): Promise<Record<string, unknown>>
  /** Closes the test's ends of stdout and stderr, as a log shipper going away does. */
  closeReaders (): Promise<void>
  /** Sends SIGTERM; resolves with the exit, or rejects if the process is still there after hangMs. */
  terminate (hangMs: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * Starts `serve` from its sources with `env` on free loopback ports; resolves once it logged that
 * it is ready. `wrapper`: a command that runs it (`['prlimit', '--nofile=256:256', '--']`).
 */
export async function startServe (t: TestContext, env: Record<string, string>, wrapper: readonly string[] = []): Promise<Served> {
  const command = [...wrapper, process.execPath, ...CLI_FROM_SOURCES, 'serve']
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_SERVICE_TOKEN: 'glpat-service', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const lines: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  let buffered = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>
        buffered = buffered.slice(nl + 1)
        lines.push(line)
        for (const w of waiters.splice(0)) w()
        if (line.msg === 'job-token-gate ready') resolve(line)
      }
    })
    void exited.then(([code]) => { reject(new Error(`serve exited (${String(code)}) before it was ready: ${stderr}`)) })
  })
  return {
    child,
    api: `http://${String(ready.listen)}`,
    health: `http://${String(ready.health)}`,
    lines,
    async waitForLine (msg, timeoutMs = 60_000) {
      for (;;) {
        const found = lines.find(l => l.msg === msg)
        if (found !== undefined) return found
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`serve exited before "${msg}"`)
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve)
          void exited.then(() => { resolve() })
          setTimeout(() => { reject(new Error(`no "${msg}" log line in ${timeoutMs} ms`)) }, timeoutMs).unref()
        })
      }
    },
    async closeReaders () {
      const closed = [once(child.stdout, 'close'), once(child.stderr, 'close')]
      child.stdout.destroy()
      child.stderr.destroy()
      await Promise.all(closed)
    },
    async terminate (hangMs) {
      const started = performance.now()
      child.kill('SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const hung = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new Error(`serve still running ${hangMs} ms after SIGTERM`)) }, hangMs)
      })
      try {
        const [code, signal] = await Promise.race([exited, hung])
        t.diagnostic(`exited ${String(code ?? signal)} ${Math.round(performance.now() - started)} ms after SIGTERM`)
        return { code, signal }
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

export type ServeOutcome = { kind: 'ready', api: string, lines: Array<Record<string, unknown>> } | { kind: 'refused', code: number | null, stderr: string }

/**
 * Starts `serve` with `env` (and `args`) and only PATH of the environment; resolves once it is
 * ready (stopped with the test) or has exited, with its exit code and stderr.
 */
export async function serveOutcome (t: TestContext, env: Record<string, string>, args: readonly string[] = []): Promise<ServeOutcome> {
  const child = spawn(process.execPath, [...CLI_FROM_SOURCES, 'serve', ...args], {
    env: { PATH: process.env.PATH, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_SERVICE_TOKEN: 'glpat-service', GATE_UNRESOLVED_PROJECT: 'defer', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  return await new Promise<ServeOutcome>((resolve, reject) => {
    // A hang detector only: a refusal or the ready line comes within seconds (half a minute on a loaded machine).
    const timer = setTimeout(() => { reject(new Error(`serve neither started nor exited: ${stderr}`)) }, 300_000)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const lines = stdout.split('\n').map(l => { try { return JSON.parse(l) as Record<string, unknown> } catch { return {} } })
      const ready = lines.find(l => l.msg === 'job-token-gate ready')
      if (ready !== undefined) { clearTimeout(timer); resolve({ kind: 'ready', api: `http://${String(ready.listen)}`, lines }) }
    })
    void once(child, 'exit').then(([code]) => { clearTimeout(timer); resolve({ kind: 'refused', code: code as number | null, stderr }) })
  })
}

/**
 * A `serve` process under an open files limit of `openFiles` (prlimit), in front of a fake GitLab
 * that holds its answers to `GET heldPath` until the test calls them (`held`), and answers `{}`
 * to anything else it does not know.
 */
export async function serveUnderFileLimit (t: TestContext, openFiles: number, heldPath: string): Promise<{ gate: Served, gitlab: FakeGitlab, held: Array<() => void> }> {
  const held: Array<() => void> = []
  const gitlab = await startFakeGitlab({
    fallback: (req, res) => {
      req.resume()
      const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}') }
      if (req.url === heldPath) held.push(answer)
      else answer()
    }
  })
  t.after(() => gitlab.close())
  const gate = await startServe(t, { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken }, ['prlimit', `--nofile=${openFiles}:${openFiles}`, '--'])
  return { gate, gitlab, held }
}
