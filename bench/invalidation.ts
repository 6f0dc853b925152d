// Invalidation lag between two gate replicas on one private Redis: N revocations written
// through replica A, each timed until replica B denies. B's cache TTL is a minute, so only
// the push invalidation can make B notice.
//
//   npm run bench:invalidation [-- N]      (default N = 1000)

import { startRedis } from '../test/helpers/redis.ts'
import { createReplica, measureRevocations } from '../test/grants/replica.ts'

const n = Number(process.argv[2] ?? 1000)
if (!Number.isSafeInteger(n) || n < 1) {
  console.error(`usage: bench/invalidation.ts [N]: N must be a positive integer, not ${process.argv[2]}`)
  process.exit(2)
}

const cleanups: Array<() => unknown> = []
const redis = await startRedis({ after: fn => cleanups.push(fn) })
const a = await createReplica({ url: redis.url }, { ttlMs: 60_000 })
const b = await createReplica({ url: redis.url }, { ttlMs: 60_000 })
try {
  await measureRevocations(a, b, Math.min(50, n), 950) // warm-up: connections, JIT, script cache
  const result = await measureRevocations(a, b, n)
  const stats = b.cache.stats()
  const ms = (x: number): string => x.toFixed(2).padStart(8)
  console.log(`revocations: ${n} (write through replica A → denied by replica B)`)
  console.log(`lag ms   p50 ${ms(result.p50)}   p99 ${ms(result.p99)}   max ${ms(result.max)}`)
  console.log(`replica B held each grant in a 60 s TTL cache before its revocation`)
  console.log(`replica B: ${stats.invalidationsReceived} invalidations received, ${stats.misses} store reads, ${stats.hits} cache hits, ${stats.failClosed} fail-closed`)
  console.log(`redis-server ${redis.url}, node ${process.version}`)
} finally {
  await a.close()
  await b.close()
  for (const fn of cleanups) await fn()
}
