// Private redis-server processes for tests: one per test file on a free port, with no
// persistence and a temp dir, never the shared Redis on 6379. Every process is stopped by the
// test's `after` hook and, should the test runner die first, by a process 'exit' handler.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, createConnection, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually } from './eventually.ts'
import { freePort } from './ports.ts'

export interface Cleanup {
  after (fn: () => unknown): void
}

export interface RedisServer {
  readonly host: string
  readonly port: number
  readonly url: string
  readonly dir: string
  /** Graceful stop (SIGTERM, waits for exit). */
  stop (): Promise<void>
  /** The TLS port, when started with `tls` (the plain port stays for PING and redis-cli). */
  readonly tlsPort: number | undefined
  /** Crash (SIGKILL, waits for exit). */
  kill (): Promise<void>
  /** Starts again on the same port (stopping first if running); data is gone (no persistence). */
  restart (): Promise<void>
  running (): boolean
  /** Freezes the process (SIGSTOP): its connections stay open and nothing answers, as a hung host. */
  pause (): void
  /** Lets a paused process run again (SIGCONT). */
  resume (): void
  /** Runs redis-cli against this server and returns its stdout. */
  cli (...args: string[]): string
}

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. */
  readonly args?: readonly string[]
  /**
   * Also serve TLS on a port of its own, with test/fixtures/tls's certificate for 127.0.0.1
   * (TLS_CA trusts it); replication, the cluster bus and a sentinel's links go over TLS too.
   */
  readonly tls?: boolean
  /** Run as a Sentinel monitoring this master (quorum 1, fast failure detection). */
  readonly sentinel?: {
    readonly masterName: string
    readonly masterPort: number
    /** The master's password (`sentinel auth-pass`). */
    readonly authPass?: string
    /** The sentinel's own password (`requirepass`). */
    readonly requirePass?: string
  }
}

const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url))
/** The certificate authority a client of a `tls` server trusts: the self-signed certificate itself. */
export const TLS_CA_FILE = join(TLS_DIR, 'localhost.crt')

function tlsArgs (tlsPort: number): string[] {
  return ['--tls-port', String(tlsPort), '--tls-cert-file', join(TLS_DIR, 'localhost.crt'), '--tls-key-file', join(TLS_DIR, 'localhost.key'),
    '--tls-ca-cert-file', TLS_CA_FILE, '--tls-auth-clients', 'no', '--tls-replication', 'yes', '--tls-cluster', 'yes']
}

const live = new Set<ChildProcess>()
const dirs = new Set<string>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

async function waitExit (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>(resolve => child.once('exit', () => resolve()))
}

/**
 * Resolves once the server on the port answers and is `child` itself. Another test's server may
 * have taken the port between probing it and binding it (ours then fails to bind): its answer
 * must not pass for ours, or a cluster would be built of a node that is no cluster node.
 * A server with a password refuses INFO, and is taken as up.
 */
async function waitPing (port: number, timeoutMs: number, child: ChildProcess, log: () => string): Promise<void> {
  const answer = await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited: ${log()}`)
    return await new Promise<'ours' | 'another' | false>(resolve => {
      const socket = createConnection({ host: '127.0.0.1', port })
      let reply = ''
      socket.setTimeout(500)
      socket.once('connect', () => socket.write('INFO server\r\n'))
      socket.on('data', data => {
        reply += data.toString()
        const pid = /process_id:(\d+)\r\n/.exec(reply)
        if (pid === null && !reply.startsWith('-NOAUTH')) return
        socket.destroy()
        resolve(pid === null || Number(pid[1]) === child.pid ? 'ours' : 'another')
      })
      socket.once('error', () => { socket.destroy(); resolve(false) })
      socket.once('timeout', () => { socket.destroy(); resolve(false) })
    })
  }, { timeoutMs, message: `redis-server on port ${port} answering` }).catch((err: Error) => {
    throw new Error(`${err.message}: ${log()}`, { cause: err })
  })
  if (answer === 'another') throw new Error(`port ${port} was taken by another redis-server before this one could bind it`)
}

export async function startRedis (cleanup?: Cleanup, options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'jtg-redis-'))
  dirs.add(dir)
  let port = await freePort()
  let tlsPort = options.tls === true ? await freePort() : undefined
  let child: ChildProcess | null = null

  async function launch (): Promise<void> {
    const tls = tlsPort === undefined ? [] : tlsArgs(tlsPort)
    let args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--protected-mode', 'no', '--loglevel', 'warning', ...tls, ...(options.args ?? [])]
    if (options.sentinel !== undefined) {
      // Sentinel needs a config file it can rewrite.
      const conf = join(dir, 'sentinel.conf')
      const { masterName, masterPort, authPass, requirePass } = options.sentinel
      writeFileSync(conf, [
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1`,
        ...(authPass === undefined ? [] : [`sentinel auth-pass ${masterName} ${authPass}`]),
        ...(requirePass === undefined ? [] : [`requirepass ${requirePass}`]),
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        ''
      ].join('\n'))
      args = [conf, '--sentinel', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--protected-mode', 'no', '--loglevel', 'warning', ...tls]
    }
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    proc.stdout!.on('data', d => { output += String(d) })
    proc.stderr!.on('data', d => { output += String(d) })
    live.add(proc)
    proc.once('exit', () => live.delete(proc))
    child = proc
    await waitPing(port, 10_000, proc, () => output.slice(-2000))
  }

  // The free port may be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch()
      break
    } catch (err) {
      if (child !== null) { (child as ChildProcess).kill('SIGKILL'); await waitExit(child) }
      if (attempt >= 3) throw err
      port = await freePort()
      if (tlsPort !== undefined) tlsPort = await freePort()
    }
  }

  async function halt (signal: NodeJS.Signals): Promise<void> {
    const proc = child
    if (proc === null) return
    child = null
    proc.kill(signal)
    await waitExit(proc)
  }

  const server: RedisServer = {
    host: '127.0.0.1',
    get port () { return port },
    get url () { return `redis://127.0.0.1:${port}` },
    get tlsPort () { return tlsPort },
    dir,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async restart () {
      await halt('SIGKILL')
      await launch()
    },
    running: () => child !== null && child.exitCode === null,
    pause () { child?.kill('SIGSTOP') },
    resume () { child?.kill('SIGCONT') },
    cli (...args) {
      const result = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' })
      if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${result.stderr}`)
      return result.stdout
    }
  }
  cleanup?.after(async () => {
    await server.kill()
    rmSync(dir, { recursive: true, force: true })
    dirs.delete(dir)
  })
  return server
}

export interface RedisCluster {
  readonly nodes: readonly RedisServer[]
  readonly seeds: ReadonlyArray<{ host: string, port: number }>
  /** The nodes' TLS ports, when started with `tls` (a TLS client is told these in CLUSTER SLOTS). */
  readonly tlsSeeds: ReadonlyArray<{ host: string, port: number }>
  stop (): Promise<void>
}

/**
 * A cluster of `masters` primaries, each with `replicas` replicas (default none), created with
 * `redis-cli --cluster create`; with replicas, it returns once every replica has synced.
 */
export async function startRedisCluster (cleanup?: Cleanup, masters = 3, replicas = 0, options: { tls?: boolean } = {}): Promise<RedisCluster> {
  const nodes: RedisServer[] = []
  for (let i = 0; i < masters * (1 + replicas); i++) {
    nodes.push(await startRedis(cleanup, {
      args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000'],
      ...(options.tls === true ? { tls: true } : {})
    }))
  }
  const addresses = nodes.map(n => `127.0.0.1:${n.port}`)
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8' })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`)
  // Every node must agree the cluster is up before a client connects.
  for (const node of nodes) {
    await eventually(() => /cluster_state:ok/.test(node.cli('cluster', 'info')), { timeoutMs: 15_000, intervalMs: 50, message: `cluster on ${addresses.join(', ')} reaching cluster_state:ok` })
  }
  for (const node of nodes) {
    await eventually(() => /^master/.test(node.cli('role')) || /master_link_status:up/.test(node.cli('info', 'replication')), { timeoutMs: 30_000, intervalMs: 100, message: `replica on port ${node.port} syncing with its master` })
  }
  return {
    nodes,
    seeds: nodes.map(n => ({ host: n.host, port: n.port })),
    tlsSeeds: nodes.flatMap(n => n.tlsPort === undefined ? [] : [{ host: n.host, port: n.tlsPort }]),
    async stop () { await Promise.all(nodes.map(n => n.kill())) }
  }
}

/** For a test's TCP relay in front of Redis: an error or a close on either end ends the other. */
export function tieSockets (client: Socket, upstream: Socket): void {
  client.on('error', () => upstream.destroy())
  upstream.on('error', () => client.destroy())
  client.on('close', () => upstream.destroy())
  upstream.on('close', () => client.destroy())
}

export interface RedisRelay {
  /** `redis://` URL of the relay. */
  readonly url: string
  /** Holds the next chunk a client sends that matches `command` for `ms` before passing it on. */
  holdNext (command: RegExp, ms: number): void
}

/** A TCP relay in front of `redis`, for delaying one command past the store's timeout (Redis then runs it). */
export async function startRedisRelay (cleanup: Cleanup, redis: RedisServer): Promise<RedisRelay> {
  let hold: { command: RegExp, ms: number } | null = null
  const relay = createServer((client: Socket) => {
    const upstream = createConnection({ host: '127.0.0.1', port: redis.port })
    client.on('data', chunk => {
      if (hold !== null && hold.command.test(chunk.toString('latin1'))) {
        const { ms } = hold
        hold = null
        setTimeout(() => upstream.write(chunk), ms)
      } else {
        upstream.write(chunk)
      }
    })
    upstream.pipe(client)
    tieSockets(client, upstream)
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  cleanup.after(() => relay.close())
  return {
    url: `redis://127.0.0.1:${(relay.address() as { port: number }).port}`,
    holdNext (command, ms) { hold = { command, ms } }
  }
}
