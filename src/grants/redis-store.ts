// Grants in Redis (single node, Sentinel or Cluster) through ioredis, shared by every gate replica.
//
// Key schema (docs/grants.md). `<prefix>` is `jtg` by default; the `{...}` part is the Redis
// Cluster hash tag, so all keys of one project live in one slot and one script can write them:
//   <prefix>:{p:<id>}:grants      hash: doc (ProjectGrants JSON), path (lower-cased full path),
//                                  version (integer, bumped by every write and delete, kept
//                                  after a delete so versions never repeat); imported: the version
//                                  import-allowlists last wrote (StoredGrants.importedVersion)
//   <prefix>:{path:<path>}:id     string: project id for a lower-cased full path
//   <prefix>:{path:<path>}:prev   string: the project the entry was taken from, while its
//                                  document claimed the path (resolvePath's fallback)
//   <prefix>:{p:<id>}:audit       stream: audit events of the configuration API, field `e` (JSON)
//   <prefix>:{p:<id>}:usage:<day> hash: least-privilege usage, expiring (usage-redis.ts)
//   <prefix>:{ns:<path>}:settings hash: doc (NamespaceSettings JSON), path, version: a root
//                                  namespace's settings, by lower-cased path
//   <prefix>:{ns:<path>}:audit    stream: that namespace's audit events
//   <prefix>:store                string: the store's marker, a random id (redis-marker.ts); in a
//                                  Cluster one per hash slot, <prefix>:{m<n>}:store
//   channel <prefix>:invalidate   {"p":<id>,"v":<version>,"t":<ms>,"paths":[...]}, or
//                                  {"n":"<path>","v":...,"t":...,"paths":["<path>"]}
// A write and its invalidation message are one Lua script (atomic, one slot), the same script
// for projects and root namespaces (the message's first member is its argument). The
// path index lives in another slot, so it is only a hint: resolvePath checks it against the
// project's own `path` field, and a stale hint resolves to nothing.
//
// Failure behaviour: commands never queue while Redis is away (enableOfflineQueue: false,
// maxRetriesPerRequest: 0), so a read fails within commandTimeoutMs and the cache can decide to
// serve a recent entry or fail closed. Every read that decides, and every write, checks the
// marker of its slot in the same script: data Redis lost fails closed (GRANTS_STORE_LOST)
// instead of reading as "nothing configured", and the script leaves a trace of the loss where
// the marker was, so that a replica started later refuses too (redis-marker.ts). A separate subscriber connection receives invalidations;
// every time it subscribes again after losing the connection it reports a reset, because
// messages published meanwhile are lost.
//
// Under Sentinel a master that hangs keeps its connections open, so ioredis would stay on it
// after Sentinel promotes its replica, and read its old data once it wakes. The store asks the
// sentinels who the master is every second and whenever one announces `+switch-master`, drops
// connections that are elsewhere (ioredis then asks the sentinels again), and takes no answer
// from a node the sentinels do not name; after a master went silent it takes none until a
// sentinel, asked after the answer came, names that master still.

import { randomUUID } from 'node:crypto'
import { isIP, type Socket } from 'node:net'
import { lookup } from 'node:dns/promises'
import type { ConnectionOptions } from 'node:tls'
import { Redis, Cluster, type RedisOptions } from 'ioredis'
import { checkStoredGrants, isRootNamespaceKey, foldedPathKey, pathKey, validateNamespaceSettings, type NamespaceSettings, type ProjectGrants } from './model.ts'
import { GrantsError, GrantsStoreLostError, GrantsStoreUnavailableError, GrantsVersionConflictError, nothingWritten } from './errors.ts'
import { LOST, fillMarkers, markLost, markerKeys, settleMarker, type MarkerKeys, type MarkerState } from './redis-marker.ts'
import { createRedisUsage } from './usage-redis.ts'
import { refuseOver } from './redis-bounds.ts'
import { namedRefusal, script } from './redis-acl.ts'
import { guardRedisSocketErrors } from './redis-sockets.ts'
import { auditEventsKept, createListeners, decodeInvalidation, storedAuditEvent, MAX_AUDIT_EVENT_BYTES, type AuditEvent, type GrantStore, type NamespaceAuditEvent, type NamespacePutOptions, type PutOptions, type StoreHealth } from './store.ts'

export interface RedisNode { readonly host: string, readonly port: number }

export interface RedisStoreOptions {
  /** Single node: `redis://[user:password@]host:port[/db]` or `rediss://...` (GATE_REDIS_URL). */
  readonly url?: string
  /** Sentinel: the sentinels to ask, and the name of the master group. */
  readonly sentinels?: readonly RedisNode[]
  readonly sentinelName?: string
  readonly sentinelPassword?: string
  /** Cluster: seed nodes. */
  readonly cluster?: readonly RedisNode[]
  /** Credentials for Sentinel and Cluster data nodes (a URL carries its own). */
  readonly username?: string
  readonly password?: string
  /** Sentinel and Cluster: TLS to the data nodes, with these node:tls options (`{}`: Node's CAs). A `rediss://` URL is TLS by itself; these options then add to it (a `ca`). */
  readonly tls?: ConnectionOptions
  /** Sentinel: TLS to the sentinels themselves. */
  readonly sentinelTls?: ConnectionOptions
  /** Key and channel prefix; default `jtg`. */
  readonly keyPrefix?: string
  /** How long start-up waits for Redis (marking a new store included), and each connection attempt's timeout. Default 5000. */
  readonly connectTimeoutMs?: number
  /** A command that takes longer fails (the cache then serves stale or fails closed). Default 1000. */
  readonly commandTimeoutMs?: number
  /** Wall clock for invalidation timestamps (tests). */
  readonly now?: () => number
  /** Audit events kept per project and root namespace, the newest. Default AUDIT_EVENTS_KEPT. */
  readonly auditEventsKept?: number
  /**
   * Whether a start that finds no store marker writes one (default true). False for the command
   * that accepts a loss: it must not settle a new id before writing the one it was given.
   */
  readonly createMarker?: boolean
  /**
   * The store's id as the operator knows it (GATE_REDIS_STORE_ID): a store holding no marker, or
   * another id, is then a loss, never marked anew (a start cannot otherwise tell a new store from
   * one that lost everything while no replica read it).
   */
  readonly storeId?: string
}

export type RedisMode = 'standalone' | 'sentinel' | 'cluster'

export interface RedisKeys {
  grants (projectId: number): string
  path (lowerPath: string): string
  /** The project a path's entry was taken from while its document claimed the path (same slot). */
  pathPrevious (lowerPath: string): string
  /** Stream of the project's audit events (configuration API), append-only. */
  audit (projectId: number): string
  /** A root namespace's settings hash, and its audit stream (lower-cased path). */
  namespace (namespacePath: string): string
  namespaceAudit (namespacePath: string): string
  readonly channel: string
}

export function redisKeys (prefix = 'jtg'): RedisKeys {
  return {
    grants: id => `${prefix}:{p:${id}}:grants`,
    path: lowerPath => `${prefix}:{path:${lowerPath}}:id`,
    pathPrevious: lowerPath => `${prefix}:{path:${lowerPath}}:prev`,
    audit: id => `${prefix}:{p:${id}}:audit`,
    namespace: path => `${prefix}:{ns:${path}}:settings`,
    namespaceAudit: path => `${prefix}:{ns:${path}}:audit`,
    channel: `${prefix}:invalidate`
  }
}

export interface RedisGrantStore extends GrantStore {
  readonly kind: 'redis'
  readonly mode: RedisMode
  readonly keys: RedisKeys
  /** The markers as this start found them (start-up logs it). */
  readonly marker: MarkerState
  readonly markerKeys: MarkerKeys
  /**
   * Accepts a loss: writes `id` (default: the store's) into every absent marker; replicas that
   * refused with that id decide again, on what the store holds now.
   */
  acceptLoss (id?: string): Promise<{ readonly id: string, readonly written: number, readonly other: number }>
}

/** The longest `path` a write script takes from a record: a full path is at most 2,048 characters (model.ts). */
const MAX_PATH_BYTES = 8192

// Lua, after the marker's check in the write scripts (`channel`: the ARGV holding the channel):
// KEYS[1] must be a hash (or absent) whose `version`, if any, is a whole number (measured before
// it is read: read into Lua, one of 64 MiB took Redis seconds to copy) and whose `path`
// no longer than a full path (the scripts return it and publish it to every replica: one near
// Redis's 512 MB, planted there, held the store's command connection past the command timeout,
// and every decision behind it), KEYS[2] a stream
// (or absent), and the Redis user must be let publish on the channel (Redis 7's
// redis.acl_check_cmd: Redis checks a script's declared keys against the ACL before running it,
// not the channels it publishes on). Redis does not undo what a script wrote before a command of
// it failed: an XADD on a key of another type, or a PUBLISH the ACL refused, once failed after the
// document was written, and the change stood without its audit event or its invalidation message,
// the other replicas never told of it. Returns {-3, 0, what is wrong} with nothing written.
function writeChecks (channel: string): string {
  return `local held = redis.call('TYPE', KEYS[1])['ok']
if held ~= 'hash' and held ~= 'none' then return {-3, 0, KEYS[1] .. ' holds a ' .. held .. ', not a hash: not a key the gate wrote (another tool\\'s, or one set by hand)'} end
held = redis.call('TYPE', KEYS[2])['ok']
if held ~= 'stream' and held ~= 'none' then return {-3, 0, KEYS[2] .. ' holds a ' .. held .. ', not a stream: not a key the gate wrote (another tool\\'s, or one set by hand)'} end
if redis.call('HSTRLEN', KEYS[1], 'version') > 15 then return {-3, 0, KEYS[1] .. ' holds a version of ' .. redis.call('HSTRLEN', KEYS[1], 'version') .. ' bytes, not a whole number: not a key the gate wrote (another tool\\'s, or one set by hand)'} end
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and (not string.match(stored, '^%d+$') or #stored > 15) then return {-3, 0, KEYS[1] .. ' holds version ' .. cjson.encode(string.sub(stored, 1, 40)) .. ', not a whole number: not a key the gate wrote (another tool\\'s, or one set by hand)'} end
if redis.call('HSTRLEN', KEYS[1], 'path') > ${MAX_PATH_BYTES} then return {-3, 0, KEYS[1] .. ' holds a path of ' .. redis.call('HSTRLEN', KEYS[1], 'path') .. ' bytes, more than a full path (${MAX_PATH_BYTES}): not a key the gate wrote (another tool\\'s, or one set by hand)'} end
if redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', ${channel}, '') then return {-3, 0, 'the Redis user may not PUBLISH ' .. ${channel} .. ' (its ACL refuses the command PUBLISH, or has no such channel)'} end
`
}

// KEYS[1] grants hash (a project's, or a root namespace's settings), KEYS[2] its audit stream
// (same slot). ARGV: doc, lower path, expected version ('' = any), channel, the message's first
// member (`"p":<id>` or `"n":"<path>"`, JSON), now, the audit event JSON ('' = none: appended
// in the same step as the write, so neither exists without the other), the audit events kept,
// the store's id, '1' when the write is the import's (its version becomes the hash's `imported`;
// '' otherwise: `imported`, the version the import last wrote, stays behind the new version). KEYS[3] the store marker of
// the slot. Returns {1, version, oldPath},
// {0, currentVersion, currentPath} on a version conflict, {-2, 0, marker} when the marker is not
// the store's (the slot lost its data: nothing is written on what is left but the trace of the
// loss, markLost), or {-3, 0, what is wrong} when a key is not what the store writes, or the
// ACL keeps the channel from the user (writeChecks).
const PUT_SCRIPT = `
${markLost(3, 9)}if marker ~= ARGV[9] then return {-2, 0, marker or ''} end
${writeChecks('ARGV[4]')}local exists = redis.call('HEXISTS', KEYS[1], 'doc') == 1
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local oldPath = redis.call('HGET', KEYS[1], 'path') or ''
if ARGV[3] ~= '' then
  local seen = 0
  if exists then seen = current end
  if tonumber(ARGV[3]) ~= seen then return {0, seen, oldPath} end
end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'path', ARGV[2])
if ARGV[10] == '1' then redis.call('HSET', KEYS[1], 'imported', version) end
local paths = {ARGV[2]}
if oldPath ~= '' and oldPath ~= ARGV[2] then paths[2] = oldPath end
if ARGV[7] ~= '' then redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[8], '*', 'e', ARGV[7]) end
redis.call('PUBLISH', ARGV[4], '{' .. ARGV[5] .. ',"v":' .. version .. ',"t":' .. ARGV[6] .. ',"paths":' .. cjson.encode(paths) .. '}')
return {1, version, oldPath}
`

// KEYS[1] grants hash, KEYS[2] its audit stream. ARGV: channel, the message's first member (as
// PUT_SCRIPT's), now, expected version ('' = any), the audit event JSON ('' = none), the audit
// events kept, the store's id; KEYS[3] the slot's store marker. Returns {1, version, oldPath},
// {0, version, ''} when there is nothing to delete, {-1, currentVersion, ''} on a version
// conflict, {-2, 0, marker} when the marker is not the store's, or {-3, 0, what is wrong} (writeChecks).
const DELETE_SCRIPT = `
${markLost(3, 7)}if marker ~= ARGV[7] then return {-2, 0, marker or ''} end
${writeChecks('ARGV[1]')}local exists = redis.call('HEXISTS', KEYS[1], 'doc') == 1
if ARGV[4] ~= '' then
  local seen = 0
  if exists then seen = tonumber(redis.call('HGET', KEYS[1], 'version') or '0') end
  if tonumber(ARGV[4]) ~= seen then return {-1, seen, ''} end
end
if not exists then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'version') or '0'), ''}
end
local oldPath = redis.call('HGET', KEYS[1], 'path') or ''
redis.call('HDEL', KEYS[1], 'doc', 'path', 'imported')
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[5] ~= '' then redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[6], '*', 'e', ARGV[5]) end
redis.call('PUBLISH', ARGV[1], '{' .. ARGV[2] .. ',"v":' .. version .. ',"t":' .. ARGV[3] .. ',"paths":' .. cjson.encode({oldPath}) .. '}')
return {1, version, oldPath}
`

// KEYS[1] path index key, KEYS[2] its previous holder (same slot). ARGV[1] id. Removes the hint
// only if it still names that project.
const UNINDEX_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1], KEYS[2]) end
return 0
`

// KEYS[1] path index key, KEYS[2] its previous holder (same slot). ARGV[1], ARGV[2] the entry and
// previous holder the write's decision read ('' = none), ARGV[3] id, ARGV[4] the project whose
// document claims the path now, kept as the previous holder ('' = none). Sets the hint only if it
// still holds what was read: another write's newer decision stands.
const INDEX_SCRIPT = `
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] or (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
if ARGV[4] == '' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[4]) end
return 1
`

// KEYS[1] the store marker of KEYS[2]'s slot, ARGV[1] the store's id, the rest fields. Returns the
// marker (absent: the trace of the loss is left, markLost), then HMGET KEYS[2] of the fields: the
// read and the marker that vouches for it in one step; a field past MAX_VALUE_BYTES fails the read.
const READ_HASH_SCRIPT = `
${markLost(1, 1)}for i = 2, #ARGV do
  ${refuseOver("redis.call('HSTRLEN', KEYS[2], ARGV[i])", "KEYS[2] .. ' holds a ' .. ARGV[i] .. ' of'")}end
local values = redis.call('HMGET', KEYS[2], unpack(ARGV, 2))
table.insert(values, 1, marker)
return values
`

// KEYS[1] the store marker of the slot of KEYS[2] and KEYS[3], ARGV[1] the store's id. Returns the
// marker, then the values of KEYS[2] and KEYS[3]. Each is a string or absent: MGET answers nothing
// for a key of another type (another tool's, one set by hand), and a path entry read so as no
// project's let a stored project's path through as unknown (GATE_UNKNOWN_PROJECT=allow); such a key
// fails the read, naming it.
const READ_PAIR_SCRIPT = `
${markLost(1, 1)}for i = 2, 3 do
  local held = redis.call('TYPE', KEYS[i])['ok']
  if held ~= 'string' and held ~= 'none' then return redis.error_reply(KEYS[i] .. ' holds a ' .. held .. ', not a string: not a key the gate wrote (another tool\\'s, or one set by hand)') end
  ${refuseOver("redis.call('STRLEN', KEYS[i])", "KEYS[i] .. ' holds'")}end
local values = redis.call('MGET', KEYS[2], KEYS[3])
table.insert(values, 1, marker)
return values
`

// KEYS[1] an audit stream: its length (XLEN), once the whole stream is measured in Redis (MEMORY
// USAGE ... SAMPLES 0 sums its nodes and copies no entry; reading one in Lua to count it copied a
// 64 MiB entry for seconds, Redis held all the while). A page is then read with XREVRANGE, which
// sends its entries whole: a stream past what the events the gate keeps can fill (`bound`) holds
// what the gate did not write, and fails the page read here, naming the key and the size. A stream
// within it sends at most that much, as a grant read may.
function readAuditScript (bound: number): string {
  return `local held = redis.call('TYPE', KEYS[1])['ok']
if held == 'none' then return 0 end
if held ~= 'stream' then return redis.error_reply(KEYS[1] .. ' holds a ' .. held .. ', not a stream: not a key the gate wrote (another tool\\'s, or one set by hand)') end
${refuseOver("redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', 0) or 0", "KEYS[1] .. ' holds'", bound)}return redis.call('XLEN', KEYS[1])
`
}

// KEYS[1] a store marker, ARGV[1] the store's id: the marker (health).
const READ_MARKER_SCRIPT = `
${markLost(1, 1)}return marker
`

type Client = Redis | Cluster

// How often the Cluster client asks who owns which slot (see the Cluster options below).
const SLOTS_REFRESH_MS = 1000
// How often the subscriber makes sure its node still answers (a PING, which a subscribed
// connection may send); no answer within the command timeout and it starts again elsewhere.
const HEARTBEAT_MS = 1000
// Sentinel: how often the sentinels are asked who the master is.
const SENTINEL_POLL_MS = 1000
// A path's index entry changed by other writes this many times in a row: left as they wrote it.
const INDEX_ATTEMPTS = 5

interface Scripts {
  jtgPut (key: string, audit: string, marker: string, ...args: string[]): Promise<[number, number, string]>
  jtgDelete (key: string, audit: string, marker: string, ...args: string[]): Promise<[number, number, string]>
  jtgReadHash (marker: string, key: string, id: string, ...fields: string[]): Promise<Array<string | null>>
  jtgReadPair (marker: string, first: string, second: string, id: string): Promise<Array<string | null>>
  jtgReadMarker (marker: string, id: string): Promise<string | null>
  jtgAuditLength (key: string): Promise<number>
  jtgUnindex (key: string, previousKey: string, id: string): Promise<number>
  jtgIndex (key: string, previousKey: string, holder: string, previous: string, id: string, claimant: string): Promise<number>
}

function modeOf (options: RedisStoreOptions): RedisMode {
  const given = [options.url !== undefined, (options.sentinels?.length ?? 0) > 0, (options.cluster?.length ?? 0) > 0].filter(Boolean).length
  if (given !== 1) throw new TypeError('redis store: give exactly one of url, sentinels or cluster')
  if ((options.sentinels?.length ?? 0) > 0) {
    if (options.sentinelName === undefined || options.sentinelName === '') throw new TypeError('redis store: sentinels need sentinelName (the master group name)')
    return 'sentinel'
  }
  return (options.cluster?.length ?? 0) > 0 ? 'cluster' : 'standalone'
}

/** Connects, waits until Redis answers (or connectTimeoutMs passes) and returns the store. */
export async function createRedisStore (options: RedisStoreOptions): Promise<RedisGrantStore> {
  guardRedisSocketErrors()
  const mode = modeOf(options)
  const keys = redisKeys(options.keyPrefix)
  const now = options.now ?? Date.now
  const kept = String(auditEventsKept(options.auditEventsKept))
  const connectTimeout = options.connectTimeoutMs ?? 5000
  const commandTimeout = options.commandTimeoutMs ?? 1000
  const listeners = createListeners()
  let lastError: string | undefined
  let closing = false

  const common: RedisOptions = {
    connectTimeout,
    commandTimeout,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    // A connection dropped on purpose (a silent node, a demoted master) is torn down after this
    // long even if the other end, hung, never closes its side.
    disconnectTimeout: commandTimeout,
    // Reconnect quickly: while Redis is away every uncached decision fails closed.
    retryStrategy: (times: number) => Math.min(times * 50, 500),
    // RESP2, which ioredis 5 spoke: every reply the store reads (its scripts', pub/sub's, a
    // sentinel's) keeps the shape its parsing and tests know. ioredis 6 defaults to RESP3.
    protocol: 2
  }
  const failFast: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false }

  function connectNode (extra: RedisOptions): Redis {
    if (mode === 'sentinel') {
      return new Redis({
        ...common,
        ...extra,
        sentinels: options.sentinels!.map(n => ({ host: n.host, port: n.port })),
        name: options.sentinelName!,
        // A sentinel that accepts the connection but never answers must not hold up finding
        // the master: give up on it and ask the next.
        sentinelCommandTimeout: commandTimeout,
        ...(options.sentinelPassword !== undefined ? { sentinelPassword: options.sentinelPassword } : {}),
        // ioredis otherwise connects to the master the sentinels name in plain text, `tls` aside.
        ...(options.tls !== undefined ? { enableTLSForSentinelMode: true } : {}),
        ...(options.sentinelTls !== undefined ? { sentinelTLS: options.sentinelTls } : {})
      })
    }
    return new Redis(options.url!, { ...common, ...extra })
  }

  const client: Client = mode === 'cluster'
    ? new Cluster(options.cluster!.map(n => ({ host: n.host, port: n.port })), {
      enableOfflineQueue: false,
      clusterRetryStrategy: (times: number) => Math.min(times * 50, 500),
      // Ask the cluster who owns which slot every second. ioredis otherwise learns a new owner
      // only from a MOVED or a broken connection: a master that stops answering keeps its
      // connection, so after the cluster promotes its replica every read of those slots would
      // time out (503) for as long as the old master hangs, and when it resumes it answers
      // with its old data until it learns it was demoted.
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      redisOptions: { ...common, ...failFast }
    })
    : connectNode(failFast)
  client.on('error', (err: Error) => { lastError = namedRefusal(err) })
  client.defineCommand('jtgPut', { numberOfKeys: 3, lua: script(PUT_SCRIPT) })
  client.defineCommand('jtgDelete', { numberOfKeys: 3, lua: script(DELETE_SCRIPT) })
  client.defineCommand('jtgReadHash', { numberOfKeys: 2, lua: script(READ_HASH_SCRIPT) })
  client.defineCommand('jtgReadPair', { numberOfKeys: 3, lua: script(READ_PAIR_SCRIPT) })
  client.defineCommand('jtgReadMarker', { numberOfKeys: 1, lua: script(READ_MARKER_SCRIPT) })
  // Every event the stream keeps at its largest, with a listpack node's overhead each.
  client.defineCommand('jtgAuditLength', { numberOfKeys: 1, lua: script(readAuditScript(Number(kept) * (MAX_AUDIT_EVENT_BYTES * 3 / 2 + 1024) + 65_536)) })
  client.defineCommand('jtgUnindex', { numberOfKeys: 2, lua: script(UNINDEX_SCRIPT) })
  client.defineCommand('jtgIndex', { numberOfKeys: 2, lua: script(INDEX_SCRIPT) })
  const scripts = client as unknown as Scripts
  const usage = createRedisUsage(client, keys.grants)

  // Sentinel: a non-zero number while the master has gone without answering (a command or the
  // subscriber's PING timed out) and no sentinel has named it master since it answered again.
  let silences = 0
  let silentSince = 0
  const subscriber = createSubscriber({
    channel: keys.channel,
    // Cluster: PUBLISH reaches every node, so any one node will do; rotate when one is lost.
    connect: mode === 'cluster'
      ? attempt => {
        const nodes = clusterNodes(client as Cluster, options.cluster!)
        const node = nodes[attempt % nodes.length]!
        return new Redis({ ...common, host: node.host, port: node.port, autoResubscribe: false, retryStrategy: times => (times > 3 ? null : times * 50) })
      }
      : () => connectNode({ autoResubscribe: false }),
    onMessage: text => listeners.emit(decodeInvalidation(text)),
    onResubscribed: () => listeners.emit({ kind: 'reset', reason: 'invalidation subscription re-established' }),
    onLost: reason => listeners.emit({ kind: 'lost', reason }),
    onError: message => { lastError = message },
    onSilent: () => { silentSince = ++silences },
    isClosing: () => closing,
    heartbeatMs: HEARTBEAT_MS
  })

  const watch = mode === 'sentinel'
    ? createSentinelWatch({
      sentinels: options.sentinels!,
      name: options.sentinelName!,
      ...(options.sentinelPassword !== undefined ? { password: options.sentinelPassword } : {}),
      ...(options.sentinelTls !== undefined ? { tls: options.sentinelTls } : {}),
      connectTimeout,
      commandTimeout,
      pollMs: SENTINEL_POLL_MS,
      heartbeatMs: HEARTBEAT_MS,
      onMaster: master => {
        // Connections still on a node that is no longer the master are dropped; ioredis finds
        // the master through the sentinels when it connects again.
        const on = (client as Redis)
        if ((on.status === 'ready' || on.status === 'connect') && !onNode(on.stream, master)) dropOnce(on, true)
        subscriber.leaveUnless(stream => onNode(stream, master))
      },
      onError: message => { lastError = message },
      isClosing: () => closing
    })
    : undefined

  const markers = markerKeys(options.keyPrefix ?? 'jtg', mode === 'cluster')
  let marker: MarkerState
  try {
    await Promise.all([waitReady(client, connectTimeout, () => lastError), subscriber.ready(connectTimeout), watch?.ask()])
    await refuseEviction(client)
    marker = await settleMarker(client, markers, { create: options.createMarker ?? true, newId: randomUUID, patienceMs: connectTimeout, expected: options.storeId })
  } catch (err) {
    // A Cluster whose ready check (CLUSTER INFO) the ACL refuses only never becomes ready: ioredis
    // keeps the refusal to itself. Asked here, the nodes name it.
    const refusal = client instanceof Cluster && client.status !== 'ready' ? await clusterInfoRefused(options.cluster!, common) : undefined
    closing = true
    subscriber.close()
    watch?.close()
    client.disconnect()
    if (err instanceof GrantsError) throw err
    throw new GrantsStoreUnavailableError(`cannot reach Redis (${mode}): ${namedRefusal(err as Error)}${refusal === undefined ? '' : ` (${refusal})`}`, { cause: err })
  }

  // Failures of a step that runs before a write's script is sent (a put's path index step): the
  // write was not made, whatever the failure (a timeout included), and call() says so.
  const unsent = new WeakSet<object>()

  // Turns an ioredis failure into the error the cache knows to treat as "store down".
  async function call<T> (what: string, run: () => Promise<T>): Promise<T> {
    if (closing) throw new GrantsStoreUnavailableError('store is closed', { unwritten: true })
    const stream = watch === undefined ? undefined : (client as Redis).stream
    let result: T
    try {
      result = await run()
    } catch (err) {
      if (err instanceof GrantsError) throw err
      lastError = namedRefusal(err as Error)
      if (watch !== undefined && /timed out/i.test(lastError)) silentSince = ++silences
      // ioredis refuses a command it has no connection to send it on (enableOfflineQueue: false):
      // it never reached Redis. Anything else (a timeout) may have run there, unless it failed a
      // step before the write was sent (unsent).
      throw new GrantsStoreUnavailableError(`${what}: ${lastError}`, { cause: err, unwritten: /enableOfflineQueue/.test(lastError) || unsent.has(err as object) })
    }
    if (watch !== undefined) await vouch(what, watch, stream)
    return result
  }

  /**
   * Sentinel: the answers just read came from the master the sentinels name. After a silence
   * that master may have been replaced while it hung and be answering with its old data, so a
   * sentinel is asked again, after the answer came.
   */
  async function vouch (what: string, sentinels: SentinelWatch, stream: Socket | undefined): Promise<void> {
    const answered = performance.now()
    const doubt = silentSince
    let master = sentinels.last()
    if (doubt !== 0 || master === undefined) {
      try {
        master = await sentinels.ask(answered)
      } catch (err) {
        lastError = (err as Error).message
        throw new GrantsStoreUnavailableError(`${what}: the master went silent and no sentinel confirms it is still the master: ${(err as Error).message}`, { cause: err })
      }
    }
    if (stream === undefined || stream !== (client as Redis).stream || !onNode(stream, master)) {
      throw new GrantsStoreUnavailableError(`${what}: answered by ${stream?.remoteAddress ?? '?'}:${stream?.remotePort ?? '?'}, not the master the sentinels name (${master.host}:${master.port})`)
    }
    if (doubt !== 0 && silentSince === doubt) silentSince = 0
  }

  /**
   * Data gone from under the gate: its marker absent (the script left the trace of the loss
   * there), or another store's. In a Cluster the trace goes on the first marker too, which every
   * start reads: a start then refuses as this replica does rather than mark the store anew.
   */
  async function lost (key: string, found: string | null): Promise<GrantsStoreLostError> {
    const gone = found === null || (marker.id !== undefined && found === LOST + marker.id)
    const first = markers.all[0]!
    if (gone && key !== first && marker.id !== undefined) await client.set(first, LOST + marker.id, 'NX').catch(() => {})
    return new GrantsStoreLostError(gone
      ? `Redis lost what the gate wrote: the store marker ${key} is gone (a restart without persistence, FLUSHALL, FLUSHDB or a deleted key); job-token decisions that need the store fail closed until the data is restored, or the loss is accepted (job-token-gate accept-store-loss --marker ${marker.id ?? '?'})`
      : options.storeId !== undefined
        ? `the store marker ${key} holds ${found}, not ${options.storeId} (GATE_REDIS_STORE_ID): the store was marked anew after a loss (by a replica without the setting), or is another store; restore the data, or set GATE_REDIS_STORE_ID to the id it holds now`
        : `the store marker ${key} holds ${found}, not ${marker.id ?? '?'}: the store was marked again since this replica started (a replica started on it after a loss); restart this replica to decide on the store as it is now`)
  }

  /**
   * A write script found a key that is not what the store writes, or a write the ACL keeps from
   * the user (writeChecks): refused before it wrote anything, as a part written would stand without
   * its audit event or invalidation.
   */
  function misshapen (detail: string): GrantsStoreUnavailableError {
    return new GrantsStoreUnavailableError(`${detail}; nothing was written`, { unwritten: true })
  }

  /** HMGET of `key`, vouched for by its slot's marker. */
  async function readHash (key: string, ...fields: string[]): Promise<Array<string | null>> {
    const at = markers.of(key)
    const [found, ...values] = await scripts.jtgReadHash(at, key, marker.id ?? '', ...fields)
    if (found !== marker.id) throw await lost(at, found ?? null)
    return values
  }

  /** MGET of two keys of one slot, vouched for by its marker. */
  async function readPair (first: string, second: string): Promise<[string | null, string | null]> {
    const at = markers.of(first)
    const [found, a, b] = await scripts.jtgReadPair(at, first, second, marker.id ?? '')
    if (found !== marker.id) throw await lost(at, found ?? null)
    return [a ?? null, b ?? null]
  }

  /**
   * An audit stream, newest first; a page is read from the top, so deep pages read more (pages are
   * small). Measured first (readAuditScript): a stream larger than the events kept can be is
   * refused before any of it is sent. An entry planted between the two commands is read as before.
   */
  async function readStream<E> (key: string, { offset, limit }: { readonly offset: number, readonly limit: number }): Promise<{ total: number, events: E[] }> {
    const total = Number(await scripts.jtgAuditLength(key))
    if (limit <= 0 || offset >= total) return { total, events: [] }
    const items = await client.xrevrange(key, '+', '-', 'COUNT', offset + limit)
    const events = items.slice(offset).map(([id, fields]) => {
      const i = fields.indexOf('e')
      const event: unknown = JSON.parse(i === -1 ? 'null' : fields[i + 1]!)
      // An event of another shape (written by hand, or by another tool) fails the read, as an
      // unreadable document does: the answer built from it once threw (a 500).
      if (event !== null && !isAuditEvent(event)) throw new Error(`audit event ${id} at ${key} is not one the gate wrote`)
      return event as E | null
    }).filter((e): e is E => e !== null)
    return { total, events }
  }

  /** Whether project `id`'s record claims the path `lower`. */
  async function claims (id: string | null, lower: string): Promise<boolean> {
    return id !== null && (await readHash(keys.grants(Number(id)), 'path'))[0] === lower
  }

  /**
   * The project whose record claims the path as resolvePath answers it: the one the entry names,
   * else the one the entry was taken from. A write takes the entry before its script records the
   * path (and may be refused, fail or never finish), so for that while the entry names a project
   * that does not claim the path, and the one it was taken from still does.
   */
  async function claimant (lower: string, holder: string | null, previous: string | null): Promise<string | null> {
    if (await claims(holder, lower)) return holder
    return previous !== holder && await claims(previous, lower) ? previous : null
  }

  /**
   * Points the path's index entry at `projectId` (the memory store's rule): unless the project
   * whose record claims the path is another one and this project's record had that path already.
   * A document written again with its old path may be older news than the other project's; the
   * configuration API writes the path GitLab gives a project now, so a change of path is the newer
   * news. The project the entry is taken from is kept beside it while its record claims the path,
   * so that a write refused on its version, or failing, or still running, leaves the path to it.
   * The entry is in another slot than the records the decision reads, so it is written only if it
   * still holds what the decision read: a write from another replica in between (a newer claim) is
   * decided again, never overwritten by a decision made before it, which could leave the entry to
   * the project whose path was old news and, once that one moved on, to none.
   */
  async function index (projectId: number, lower: string): Promise<void> {
    const id = String(projectId)
    for (let attempt = 0; attempt < INDEX_ATTEMPTS; attempt++) {
      const [holder, previous] = await readPair(keys.path(lower), keys.pathPrevious(lower))
      if (holder === id) return
      const [now, own] = await Promise.all([claimant(lower, holder, previous), claims(id, lower)])
      if (now !== null && now !== id && own) return
      const kept = now === null || now === id ? '' : now
      if (await scripts.jtgIndex(keys.path(lower), keys.pathPrevious(lower), holder ?? '', previous ?? '', id, kept) === 1) return
    }
  }

  /**
   * Clean-up after a write's script committed (an old path's index entry): the write stands and is
   * answered as made whatever the clean-up meets. A timeout here once failed the request (503, the
   * audit line "it may have been made") for a change made, audited and published; the entry left
   * behind names a project whose record no longer claims the path, which resolvePath answers as no
   * project. A timeout still counts as a silence of the master (Sentinel).
   */
  async function tidy (run: () => Promise<unknown>): Promise<void> {
    try {
      await run()
    } catch (err) {
      lastError = (err as Error).message
      if (watch !== undefined && /timed out/i.test(lastError)) silentSince = ++silences
    }
  }

  async function unindex (lowerPath: string, projectId: number): Promise<void> {
    await scripts.jtgUnindex(keys.path(lowerPath), keys.pathPrevious(lowerPath), String(projectId))
  }

  return {
    kind: 'redis',
    mode,
    keys,
    marker,
    markerKeys: markers,
    acceptLoss: async (id = marker.id) => await call('acceptLoss', async () => {
      if (id === undefined) throw new TypeError('the store holds no marker and none was given')
      return { id, ...await fillMarkers(client, markers, id, connectTimeout) }
    }),
    get: projectId => call('get', async () => {
      const [doc, version, imported] = await readHash(keys.grants(projectId), 'doc', 'version', 'imported')
      if (doc === null || doc === undefined) return null
      let grants: ProjectGrants
      try {
        grants = checkStoredGrants(JSON.parse(doc))
      } catch (err) {
        // Never guess from a document the gate cannot read: fail closed.
        throw new GrantsStoreUnavailableError(`project ${projectId} holds an unreadable document: ${(err as Error).message}`)
      }
      if (grants.projectId !== projectId) throw new GrantsStoreUnavailableError(`key of project ${projectId} holds project ${grants.projectId}`)
      // The version the import last wrote; absent for a document stored before the gate kept it.
      const importedVersion = imported === null || imported === undefined ? NaN : Number(imported)
      return Object.freeze({ ...grants, version: Number(version), ...(Number.isSafeInteger(importedVersion) && importedVersion > 0 ? { importedVersion } : {}) })
    }),
    resolvePath: path => call('resolvePath', async () => {
      const lower = foldedPathKey(path)
      if (lower === null) return null
      const [id, previous] = await readPair(keys.path(lower), keys.pathPrevious(lower))
      if (id === null && previous === null) return null
      // The index is a hint in another slot: the project's own record has the last word.
      const found = await claimant(lower, id, previous)
      return found === null ? null : Number(found)
    }),
    put: (input, putOptions: PutOptions = {}) => call('put', async () => {
      const grants = checkStoredGrants(input)
      const id = String(grants.projectId)
      const lower = pathKey(grants.projectPath)
      // Index first: a reader that finds the hint before the record changes gets the project the
      // entry was taken from, while its record claims the path, never one whose record does not.
      // Not taken from another project whose record claims the path when this write brings no news
      // of it (the record had that path already): see index.
      try {
        await index(grants.projectId, lower)
      } catch (err) {
        // The document's write comes after: it was not sent. (Redis's own errors go to call(),
        // which keeps track of a master gone silent; a timeout here once read there as a write
        // that may have been made, and the audit line said so of a change never sent.)
        if (err instanceof GrantsError) throw nothingWritten(err)
        if (typeof err === 'object' && err !== null) unsent.add(err)
        throw err
      }
      const expected = putOptions.expectedVersion === undefined ? '' : String(putOptions.expectedVersion)
      const audit = putOptions.audit === undefined ? '' : storedAuditEvent(putOptions.audit).json
      const at = markers.of(keys.grants(grants.projectId))
      const [ok, version, oldPath] = await scripts.jtgPut(keys.grants(grants.projectId), keys.audit(grants.projectId), at, JSON.stringify(grants), lower, expected, keys.channel, `"p":${id}`, String(now()), audit, kept, marker.id ?? '', putOptions.imported === true ? '1' : '')
      // The script wrote nothing but the trace of the loss.
      if (ok === -2) throw nothingWritten(await lost(at, oldPath || null))
      if (ok === -3) throw misshapen(oldPath)
      // Refused: the entry stays as taken, and resolves to the project it was taken from while that
      // one's record claims the path. Removing it here dropped that project's entry, and putting it
      // back could undo another write of this project that recorded the path meanwhile.
      if (ok !== 1) throw new GrantsVersionConflictError(grants.projectId, putOptions.expectedVersion!, Number(version))
      if (oldPath !== '' && oldPath !== lower) await tidy(() => unindex(oldPath, grants.projectId))
      return Number(version)
    }),
    delete: projectId => call('delete', async () => {
      const at = markers.of(keys.grants(projectId))
      const [ok, , oldPath] = await scripts.jtgDelete(keys.grants(projectId), keys.audit(projectId), at, keys.channel, `"p":${projectId}`, String(now()), '', '', kept, marker.id ?? '')
      if (ok === -2) throw nothingWritten(await lost(at, oldPath || null))
      if (ok === -3) throw misshapen(oldPath)
      if (ok !== 1) return false
      if (oldPath !== '') await tidy(() => unindex(oldPath, projectId))
      return true
    }),
    version: projectId => call('version', async () => Number((await readHash(keys.grants(projectId), 'version'))[0] ?? 0)),
    appendAudit: event => call('appendAudit', async () => {
      await client.xadd(keys.audit(event.projectId), 'MAXLEN', kept, '*', 'e', storedAuditEvent(event).json)
    }),
    readAudit: (projectId, page) => call('readAudit', async () => await readStream<AuditEvent>(keys.audit(projectId), page)),
    getNamespace: namespacePath => call('getNamespace', async () => {
      const key = pathKey(namespacePath)
      if (!isRootNamespaceKey(key)) return null
      const [doc, version] = await readHash(keys.namespace(key), 'doc', 'version')
      if (doc === null || doc === undefined) return null
      let settings: NamespaceSettings
      try {
        settings = validateNamespaceSettings(JSON.parse(doc))
      } catch (err) {
        throw new GrantsStoreUnavailableError(`root namespace ${key} holds an unreadable document: ${(err as Error).message}`)
      }
      if (settings.namespacePath !== key) throw new GrantsStoreUnavailableError(`key of root namespace ${key} holds ${settings.namespacePath}`)
      return Object.freeze({ ...settings, version: Number(version) })
    }),
    putNamespace: (input, putOptions: NamespacePutOptions = {}) => call('putNamespace', async () => {
      const settings = validateNamespaceSettings(input)
      const key = settings.namespacePath
      const expected = putOptions.expectedVersion === undefined ? '' : String(putOptions.expectedVersion)
      const audit = putOptions.audit === undefined ? '' : storedAuditEvent(putOptions.audit).json
      const at = markers.of(keys.namespace(key))
      const [ok, version, found] = await scripts.jtgPut(keys.namespace(key), keys.namespaceAudit(key), at, JSON.stringify(settings), key, expected, keys.channel, `"n":${JSON.stringify(key)}`, String(now()), audit, kept, marker.id ?? '', '')
      if (ok === -2) throw nothingWritten(await lost(at, found || null))
      if (ok === -3) throw misshapen(found)
      if (ok !== 1) throw new GrantsVersionConflictError(0, putOptions.expectedVersion!, Number(version))
      return Number(version)
    }),
    deleteNamespace: (namespacePath, putOptions: NamespacePutOptions = {}) => call('deleteNamespace', async () => {
      const key = pathKey(namespacePath)
      if (!isRootNamespaceKey(key)) return false
      const expected = putOptions.expectedVersion === undefined ? '' : String(putOptions.expectedVersion)
      const audit = putOptions.audit === undefined ? '' : storedAuditEvent(putOptions.audit).json
      const at = markers.of(keys.namespace(key))
      const [ok, version, found] = await scripts.jtgDelete(keys.namespace(key), keys.namespaceAudit(key), at, keys.channel, `"n":${JSON.stringify(key)}`, String(now()), expected, audit, kept, marker.id ?? '')
      if (ok === -2) throw nothingWritten(await lost(at, found || null))
      if (ok === -3) throw misshapen(found)
      if (ok === -1) throw new GrantsVersionConflictError(0, putOptions.expectedVersion!, Number(version))
      return ok === 1
    }),
    appendNamespaceAudit: event => call('appendNamespaceAudit', async () => {
      await client.xadd(keys.namespaceAudit(pathKey(event.namespacePath)), 'MAXLEN', kept, '*', 'e', storedAuditEvent(event).json)
    }),
    readNamespaceAudit: (namespacePath, page) => call('readNamespaceAudit', async () =>
      await readStream<NamespaceAuditEvent>(keys.namespaceAudit(pathKey(namespacePath)), page)),
    subscribe: listener => listeners.add(listener),
    recordUsage: (batch, limits, unrecorded) => call('recordUsage', () => usage.recordUsage(batch, limits, unrecorded)),
    readUsage: (projectId, days) => call('readUsage', () => usage.readUsage(projectId, days)),
    readDroppedUsage: (projectId, days) => call('readDroppedUsage', () => usage.readDroppedUsage(projectId, days)),
    async health (): Promise<StoreHealth> {
      const started = performance.now()
      try {
        await call('ping', () => client.ping())
        // The first marker only (in a Cluster, one slot of 16,384): every read checks its own.
        await call('marker', async () => {
          const found = await scripts.jtgReadMarker(markers.all[0]!, marker.id ?? '')
          if (found !== marker.id) throw await lost(markers.all[0]!, found)
        })
        const down = subscriber.failure()
        return { ok: true, kind: 'redis', mode, subscribed: subscriber.subscribed(), subscribedTo: subscriber.address(), latencyMs: performance.now() - started, ...(down === undefined ? {} : { detail: `invalidations are not received: ${down}` }) }
      } catch (err) {
        return { ok: false, kind: 'redis', mode, subscribed: subscriber.subscribed(), subscribedTo: subscriber.address(), detail: (err as Error).message }
      }
    },
    async close () {
      if (closing) return
      closing = true
      listeners.clear()
      subscriber.close()
      watch?.close()
      await client.quit().catch(() => client.disconnect())
    }
  }
}

/**
 * A seed node's refusal of CLUSTER INFO (ioredis's ready check for a Cluster), if it refuses it:
 * asked on a connection of its own, as the Cluster's node connections may not be open yet.
 */
async function clusterInfoRefused (seeds: readonly RedisNode[], options: RedisOptions): Promise<string | undefined> {
  for (const seed of seeds) {
    const probe = new Redis({ ...options, host: seed.host, port: seed.port, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.call('CLUSTER', 'INFO')
    } catch (err) {
      if (/NOPERM/.test((err as Error).message)) return `CLUSTER INFO: ${(err as Error).message}`
    } finally {
      probe.disconnect()
    }
  }
  return undefined
}

function clusterNodes (cluster: Cluster, seeds: readonly RedisNode[]): RedisNode[] {
  const known = cluster.nodes('master').map(n => ({ host: n.options.host ?? '127.0.0.1', port: n.options.port ?? 6379 }))
  const all = [...known, ...seeds]
  return all.filter((n, i) => all.findIndex(m => m.host === n.host && m.port === n.port) === i)
}

/**
 * Grants, versions, path entries and audit streams have no expiry. A Redis whose maxmemory policy
 * evicts any key (allkeys-*) drops them when full, with no invalidation: a project whose document
 * went reads as unknown (GATE_UNKNOWN_PROJECT=allow lets every job in), its version starts again,
 * its audit trail is gone. Such a Redis is refused at start. An INFO the ACL refuses tells nothing.
 */
async function refuseEviction (client: Client): Promise<void> {
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client]
  for (const node of nodes) {
    let info: string
    try {
      info = await node.info('memory')
    } catch {
      continue
    }
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
    const limit = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0)
    if (policy !== undefined && policy.startsWith('allkeys-') && limit > 0) {
      const where = node.options.host === undefined ? '' : ` ${node.options.host}:${node.options.port ?? ''}`
      throw new GrantsStoreUnavailableError(`Redis${where} evicts keys without an expiry when full (maxmemory-policy ${policy}, maxmemory ${limit}): allowlists would vanish without a trace; use noeviction (or a volatile-* policy) for the grants' Redis`)
    }
  }
}

const AUTH_REFUSED = /\b(?:NOAUTH|WRONGPASS)\b/

function waitReady (client: Client, timeoutMs: number, lastError: () => string | undefined): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms${lastError() !== undefined ? ` (${lastError()!})` : ''}`), timeoutMs)
    function stop (): void {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('end', onEnd)
      client.off('error', onError)
    }
    function fail (message: string): void {
      stop()
      reject(new Error(message))
    }
    function onReady (): void {
      stop()
      resolve()
    }
    // Disconnected (a start that failed elsewhere): no timer is left to hold the process.
    function onEnd (): void { fail(`connection ended before it was ready${lastError() !== undefined ? ` (${lastError()!})` : ''}`) }
    // Credentials Redis refuses will not work on the next try either: say so now.
    function onError (err: Error): void { if (AUTH_REFUSED.test(err.message)) fail(err.message) }
    client.once('ready', onReady)
    client.once('end', onEnd)
    client.on('error', onError)
  })
}

interface SubscriberOptions {
  readonly channel: string
  /** A new connection; `attempt` counts connections made so far (cluster rotates nodes with it). */
  readonly connect: (attempt: number) => Redis
  readonly onMessage: (text: string) => void
  readonly onResubscribed: () => void
  /** The subscription went down, or (still down) was refused for another cause: messages are missed. */
  readonly onLost?: (reason: string) => void
  readonly onError: (message: string) => void
  /** The node did not answer a PING in time. */
  readonly onSilent?: () => void
  readonly isClosing: () => boolean
  /** Interval of the liveness check (PING, answered within the connection's command timeout). */
  readonly heartbeatMs: number
}

interface Subscriber {
  ready: (timeoutMs: number) => Promise<void>
  subscribed: () => boolean
  /** Why it is not subscribed (the last cause), while it is not. */
  failure: () => string | undefined
  address: () => string
  /** Drops the connection (a new one follows) unless its socket passes `keep`; not while connecting. */
  leaveUnless: (keep: (stream: Socket) => boolean) => void
  close: () => void
}

/**
 * The invalidation subscription. It subscribes on every `ready` itself (autoResubscribe off) so
 * it knows when the subscription is really back, and reports a reset each time after the first.
 * A connection that gives up (cluster nodes retry a few times only) is replaced by a new one.
 * A node that stops answering keeps the connection open and the subscriber would hear nothing
 * while it says it is subscribed: a PING every heartbeatMs that gets no answer within the
 * command timeout drops the connection, and the next one (another cluster node; the current
 * master under Sentinel) reports a reset. Once it has subscribed, every loss is reported
 * (onLost) as it happens, and again for each new cause while it lasts: a SUBSCRIBE the ACL
 * refuses is tried again every heartbeat, and would otherwise go unseen.
 */
function createSubscriber (options: SubscriberOptions): Subscriber {
  let attempt = 0
  let subscribedNow = false
  let everSubscribed = false
  let connection: Redis
  /** Why it is not subscribed, and the cause last reported (onLost) since it last was. */
  let failure: string | undefined = 'not subscribed yet'
  let reported: string | undefined
  /** Waiting for the first subscription, each with its timeout. */
  const waiters = new Map<() => void, NodeJS.Timeout>()

  function lose (reason: string): void {
    const was = subscribedNow
    subscribedNow = false
    failure = reason
    if (!everSubscribed || options.isClosing() || (!was && reported === reason)) return
    reported = reason
    options.onLost?.(reason)
  }

  function start (): void {
    const conn = options.connect(attempt++)
    connection = conn
    let refused = false
    conn.on('error', (err: Error) => options.onError(`subscriber: ${err.message}`))
    conn.on('message', (channel: string, text: string) => {
      if (channel === options.channel) options.onMessage(text)
    })
    conn.on('ready', () => {
      conn.subscribe(options.channel).then(() => {
        if (conn !== connection) return
        subscribedNow = true
        failure = undefined
        reported = undefined
        if (everSubscribed) options.onResubscribed()
        everSubscribed = true
        for (const wake of [...waiters.keys()]) wake()
        waiters.clear()
      }, (err: Error) => {
        options.onError(`subscribe: ${err.message}`)
        // A SUBSCRIBE that timed out may still reach Redis: the connection would then hear
        // messages with no reset for those missed before it, and no heartbeat. Start again.
        if (conn === connection && !options.isClosing()) {
          lose(`SUBSCRIBE ${options.channel} failed: ${err.message}`)
          refused = true
          dropOnce(conn)
        }
      })
    })
    const heartbeat = setInterval(() => {
      if (conn !== connection || !subscribedNow || options.isClosing()) return
      conn.ping().catch((err: Error) => {
        if (conn !== connection || options.isClosing()) return
        options.onError(`subscriber: no answer to PING (${err.message}), connecting again`)
        options.onSilent?.()
        lose(`no answer to PING within the command timeout (${err.message})`)
        dropOnce(conn)
      })
    }, options.heartbeatMs)
    heartbeat.unref()
    conn.on('close', () => { if (conn === connection && subscribedNow) lose('the connection closed') })
    conn.on('end', () => {
      clearInterval(heartbeat)
      if (conn !== connection || options.isClosing()) return
      if (subscribedNow) lose('the connection ended')
      // A SUBSCRIBE refused (an ACL without the channel) would be refused again at once.
      setTimeout(() => { if (!options.isClosing()) start() }, refused ? options.heartbeatMs : 50).unref()
    })
  }
  start()

  return {
    ready: timeoutMs => everSubscribed
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake)
          reject(new Error(`invalidation subscription not ready after ${timeoutMs} ms (${failure ?? 'subscribed'})`))
        }, timeoutMs)
        const wake = (): void => { clearTimeout(timer); resolve() }
        waiters.set(wake, timer)
      }),
    subscribed: () => subscribedNow,
    failure: () => subscribedNow ? undefined : failure ?? 'closed',
    address: () => {
      // Under Sentinel the options name no node (the sentinels are asked): the socket says which.
      const socket = (connection as unknown as { stream?: { remoteAddress?: string, remotePort?: number } }).stream
      if (socket?.remoteAddress !== undefined) return `${socket.remoteAddress}:${socket.remotePort ?? ''}`
      return `${connection.options.host ?? ''}:${connection.options.port ?? ''}`
    },
    leaveUnless (keep) {
      const conn = connection
      if ((conn.status === 'ready' || conn.status === 'connect') && !keep(conn.stream)) {
        lose('connected to a node the sentinels no longer name the master')
        dropOnce(conn)
      }
    },
    close () {
      subscribedNow = false
      // A start that failed elsewhere leaves no timer to hold the process.
      for (const timer of waiters.values()) clearTimeout(timer)
      waiters.clear()
      connection.disconnect()
    }
  }
}

/** Sockets already told to go (dropOnce). */
const leaving = new WeakSet<object>()

/**
 * Drops a connection, once. ioredis ends its socket and destroys it only after disconnectTimeout
 * when the node does not close its side (a hung node), and every disconnect() adds a 'close'
 * listener and a timer to the socket: asked again at each sentinel answer meanwhile (every
 * second, and on every read after a silence), they piled up on the one socket, past ten with a
 * MaxListenersExceededWarning.
 */
function dropOnce (conn: Redis, reconnect = false): void {
  const stream: Socket | undefined = conn.stream
  if (stream !== undefined) {
    if (leaving.has(stream)) return
    leaving.add(stream)
  }
  conn.disconnect(reconnect)
}

/** A master as a sentinel names it, with the addresses a socket to it can have. */
interface MasterAddress { readonly host: string, readonly port: number, readonly ips: readonly string[] }

function plainIp (ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip
}

function onNode (stream: Socket | undefined, master: MasterAddress): boolean {
  const remote = stream?.remoteAddress
  return remote !== undefined && stream!.remotePort === master.port && master.ips.includes(plainIp(remote))
}

interface SentinelWatchOptions {
  readonly sentinels: readonly RedisNode[]
  readonly name: string
  readonly password?: string
  readonly tls?: ConnectionOptions
  readonly connectTimeout: number
  /** Each sentinel gets this long to answer before the next is asked. */
  readonly commandTimeout: number
  readonly pollMs: number
  readonly heartbeatMs: number
  /** Every answer, in the order the questions were asked. */
  readonly onMaster: (master: MasterAddress) => void
  readonly onError: (message: string) => void
  readonly isClosing: () => boolean
}

interface SentinelWatch {
  /** The master a sentinel named in answer to a question asked at or after `since` (performance.now()). */
  ask: (since?: number) => Promise<MasterAddress>
  /** The latest answer. */
  last: () => MasterAddress | undefined
  close: () => void
}

/**
 * Who the sentinels say the master is: asked every pollMs, and at once when the sentinel it
 * listens to announces `+switch-master` for the name (or it listens again after losing the
 * connection, when an announcement may have been missed). One sentinel at a time; one that
 * fails or does not answer within the command timeout is left for the next.
 */
function createSentinelWatch (options: SentinelWatchOptions): SentinelWatch {
  const { sentinels, name } = options
  let index = 0
  let conn: Redis | undefined
  let inflight: { sentAt: number, answer: Promise<MasterAddress> } | undefined
  let latest: { sentAt: number, master: MasterAddress } | undefined
  let closed = false

  function connect (node: RedisNode, extra: RedisOptions): Redis {
    const c = new Redis({
      host: node.host,
      port: node.port,
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
      connectTimeout: options.connectTimeout,
      commandTimeout: options.commandTimeout,
      disconnectTimeout: options.commandTimeout,
      maxRetriesPerRequest: 0,
      protocol: 2,
      ...extra
    })
    c.on('error', (err: Error) => options.onError(`sentinel ${node.host}:${node.port}: ${err.message}`))
    return c
  }

  async function askSentinels (): Promise<MasterAddress> {
    let failure: unknown
    for (let tried = 0; tried < sentinels.length; tried++) {
      if (closed) break
      const node = sentinels[index % sentinels.length]!
      conn ??= connect(node, { enableReadyCheck: false, retryStrategy: () => null })
      const c = conn
      try {
        const reply = await c.call('SENTINEL', 'get-master-addr-by-name', name)
        if (!Array.isArray(reply) || reply.length < 2) throw new Error(`sentinel ${node.host}:${node.port} knows no master ${name}`)
        const host = String(reply[0])
        const port = Number(reply[1])
        const ips = isIP(host) !== 0 ? [plainIp(host)] : (await lookup(host, { all: true })).map(a => plainIp(a.address))
        return { host, port, ips }
      } catch (err) {
        failure = err
        if (conn === c) {
          c.disconnect()
          conn = undefined
          index++
        }
      }
    }
    throw new Error(`no sentinel named the master: ${failure instanceof Error ? failure.message : 'closed'}`)
  }

  function ask (since = performance.now()): Promise<MasterAddress> {
    if (inflight !== undefined && inflight.sentAt >= since) return inflight.answer
    const sentAt = performance.now()
    const answer = askSentinels().then(master => {
      // An older question answered late says nothing newer than what is known.
      if (latest === undefined || latest.sentAt <= sentAt) {
        latest = { sentAt, master }
        if (!closed) options.onMaster(master)
      }
      return master
    })
    const entry = { sentAt, answer }
    inflight = entry
    answer.then(() => {}, () => {}).finally(() => { if (inflight === entry) inflight = undefined })
    return answer
  }
  const askQuietly = (): void => { if (!closed) ask().catch(() => {}) }

  const poll = setInterval(() => { if (inflight === undefined) askQuietly() }, options.pollMs)
  poll.unref()

  const announcements = createSubscriber({
    channel: '+switch-master',
    connect: attempt => connect(sentinels[attempt % sentinels.length]!, { autoResubscribe: false, retryStrategy: times => (times > 3 ? null : times * 50) }),
    // "<name> <old ip> <old port> <new ip> <new port>"
    onMessage: text => { if (text.split(' ')[0] === name) askQuietly() },
    onResubscribed: askQuietly,
    onError: message => options.onError(`sentinel announcements: ${message}`),
    isClosing: () => closed || options.isClosing(),
    heartbeatMs: options.heartbeatMs
  })

  return {
    ask,
    last: () => latest?.master,
    close () {
      closed = true
      clearInterval(poll)
      announcements.close()
      conn?.disconnect()
      conn = undefined
    }
  }
}

/** The fields every audit event the gate writes has (AuditEvent, NamespaceAuditEvent), as the views read them. */
function isAuditEvent (e: unknown): boolean {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return false
  const { actor, action, time, requestId } = e as Record<string, unknown>
  const who = actor as Record<string, unknown> | null | undefined
  const actorKnown = typeof who === 'object' && who !== null && (who.kind === 'operator' || (who.kind === 'user' && typeof who.id === 'number' && (who.username === undefined || typeof who.username === 'string')))
  return actorKnown && typeof action === 'string' && typeof time === 'string' && typeof requestId === 'string'
}
