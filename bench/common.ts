// Small pieces the benchmarks share (bench/e2e.ts, bench/instructions.ts, bench/match.ts).

import { execFileSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/** The median of a list (the mean of the two middle values for an even count). */
export function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Waits until `url` answers below 500 (a readiness endpoint: 200 once ready, 503 before). */
export async function waitHttp (url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.status < 500) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`)
    await sleep(100)
  }
}

/** The port a benchmark server (bench/e2e/*.mjs) reports over IPC once it listens. */
export async function listeningPort (child: ChildProcess, name: string): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port))
    child.once('exit', () => reject(new Error(`${name} exited before listening`)))
  })
}

/** The listeners a gate started with `*_LISTEN` on port 0 bound, from its ready log line. */
export interface GateListeners { readonly port: number, readonly health: number, readonly auth: number | null }

/**
 * Reads a gate's stdout until its `job-token-gate ready` line and returns the ports it names: a
 * gate told port 0 is never mistaken for another program that took a port picked beforehand.
 */
export async function gateReady (child: ChildProcess, name: string): Promise<GateListeners> {
  const portOf = (address: unknown): number => Number(String(address).slice(String(address).lastIndexOf(':') + 1))
  return await new Promise<GateListeners>((resolve, reject) => {
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString()
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (!line.includes('job-token-gate ready')) continue
        const ready = JSON.parse(line) as { listen: string, health: string, auth?: string }
        child.stdout!.off('data', onData)
        resolve({ port: portOf(ready.listen), health: portOf(ready.health), auth: ready.auth === undefined ? null : portOf(ready.auth) })
        return
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', () => reject(new Error(`${name} exited before it was ready`)))
  })
}

/** The counts of one callgrind dump (its `events:` and `summary:` lines), by event: Ir, and with the cache simulation I1mr, D1mr... */
export function callgrindCounts (file: string): Record<string, number> {
  const text = readFileSync(file, 'utf8')
  const events = /^events: (.+)$/m.exec(text)
  const values = /^summary: (.+)$/m.exec(text)
  if (events === null || values === null) throw new Error(`${file}: no events or summary line`)
  const names = events[1]!.trim().split(' ')
  const numbers = values[1]!.trim().split(' ').map(Number)
  return Object.fromEntries(names.map((name, i) => [name, numbers[i] ?? 0]))
}

/** Whether `tool` is a command on the PATH. */
export function hasCommand (tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Throws, naming `bench`, unless valgrind and callgrind_control are installed. */
export function requireCallgrind (bench: string): void {
  for (const tool of ['valgrind', 'callgrind_control']) {
    if (!hasCommand(tool)) throw new Error(`${tool} not found: ${bench} needs valgrind (Debian: apt-get install valgrind)`)
  }
}
