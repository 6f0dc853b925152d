// A long-lived child process answering one JSON line per JSON line (the Ruby oracles:
// rack-oracle.rb, grape-oracle.rb). Answers come in the order asked; `{"error": ...}` rejects
// that one question; the process ending rejects every open one.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface LineOracle<A> {
  ask (question: unknown): Promise<A>
  close (): Promise<void>
}

export function startLineOracle<A> (name: string, command: string, args: readonly string[]): LineOracle<A> {
  const child: ChildProcessWithoutNullStreams = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  const waiting: Array<{ resolve: (a: A) => void, reject: (e: Error) => void }> = []
  let stderr = ''
  let failed: Error | null = null
  const fail = (err: Error): void => {
    failed ??= err
    for (const w of waiting.splice(0)) w.reject(failed)
  }
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => { stderr += chunk })
  child.on('error', fail)
  child.on('exit', (code, signal) => { fail(new Error(`${name} exited (${code ?? signal ?? '?'}): ${stderr.trim()}`)) })
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    const w = waiting.shift()
    if (w === undefined) return
    const parsed = JSON.parse(line) as A | { error: string }
    if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) w.reject(new Error(`${name} failed on a request: ${parsed.error}`))
    else w.resolve(parsed as A)
  })
  return {
    ask (question) {
      if (failed !== null) return Promise.reject(failed)
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject })
        child.stdin.write(JSON.stringify(question) + '\n')
      })
    },
    async close () {
      if (child.exitCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
      failed ??= new Error(`${name} closed`)
      child.stdin.end()
      await exited
    }
  }
}
