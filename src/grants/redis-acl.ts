// Naming the command a Redis ACL refused. A command the gate sends itself is refused with
// `NOPERM ... run the 'hgetall' command`, which names it; one a script runs is refused (Redis 7.0)
// with `ERR The user executing the script can't run this command or subcommand script: <sha1>,
// on @user_script:<line>.`, which names none, and an ACL that listed the commands one by one and
// missed one failed every read of that kind with nothing to say which. Every script the store
// sends is registered here, so the line can be read back: the refusal then names the command
// (docs/grants.md lists every command the gate needs).

import { createHash } from 'node:crypto'

const scripts = new Map<string, string>()

/** Registers a script the store sends (by its SHA1, as EVALSHA names it); returns it. */
export function script (lua: string): string {
  scripts.set(createHash('sha1').update(lua).digest('hex'), lua)
  return lua
}

const REFUSED_IN_SCRIPT = /can't run this command or subcommand script: ([0-9a-f]{40}), on @user_script:(\d+)/
// `redis.call('HSTRLEN', ...)`, `redis.call('MEMORY', 'USAGE', ...)`: the command and a subcommand.
const CALL = /redis\.p?call\('([A-Za-z]+)'(?:,\s*'([A-Za-z]+)')?/g
const SUBCOMMANDS = new Set(['MEMORY', 'SCRIPT', 'CLUSTER', 'CLIENT', 'CONFIG', 'OBJECT'])

/** The commands a registered script runs at `line` (1-based), as an ACL names them. */
function commandsAt (sha: string, line: number): string[] {
  const text = scripts.get(sha)?.split('\n')[line - 1] ?? ''
  return [...text.matchAll(CALL)].map(([, command, sub]) => SUBCOMMANDS.has(command!.toUpperCase()) && sub !== undefined ? `${command!.toUpperCase()} ${sub.toUpperCase()}` : command!.toUpperCase())
}

/**
 * `message`, a Redis error, with the command named when it is an ACL's refusal inside one of the
 * store's scripts; any other as it is. A transaction's EXECABORT carries the refusals that caused
 * it, and a Cluster's `Failed to refresh slots cache.` the last node's error (a CLUSTER SLOTS the
 * ACL refuses, for one).
 */
export function namedRefusal (err: Error & { previousErrors?: readonly Error[], lastNodeError?: Error }): string {
  let message = err.message
  if (err.previousErrors !== undefined && err.previousErrors.length > 0) message += ` (${err.previousErrors.map(e => e.message).join('; ')})`
  if (err.lastNodeError instanceof Error) message += ` (${err.lastNodeError.message})`
  const found = REFUSED_IN_SCRIPT.exec(message)
  if (found === null) return message
  const commands = [...new Set(commandsAt(found[1]!, Number(found[2])))]
  if (commands.length === 0) return message
  return `${message} (NOPERM: the Redis user's ACL refuses ${commands.length === 1 ? commands[0]! : `one of ${commands.join(', ')}`}, which the store's script runs there; docs/grants.md lists the commands the gate needs)`
}
