// Small pieces the benchmarks share (bench/e2e.ts, bench/instructions.ts, bench/match.ts).

import type { ChildProcess } from 'node:child_process'
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
