// How much one read of the Redis store may carry. The store has one command connection: a value
// near Redis's 512 MB, written into a key by another tool or by hand, was sent whole at each read
// of it, held the connection past the command timeout, and every command queued behind it (every
// decision's read, of any project) timed out: 503. The read scripts measure what they would send
// in Redis first and refuse past the bound there, naming the key and the size: that read fails,
// the others go on.

/**
 * The longest value (or the largest usage hash) a read returns. A document the gate writes is a
 * megabyte or two at most (200 project and 200 group entries); a day's usage of a project is far
 * less.
 */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024

/**
 * Lua: fails the script when `size` (a Lua expression, evaluated once) passes `bound`, with an
 * error that reads `<what> <size> bytes, more than the gate reads (<bound>)`; `what` is a Lua
 * expression naming the key (`KEYS[1] .. ' holds'`).
 */
export function refuseOver (size: string, what: string, bound: number = MAX_VALUE_BYTES): string {
  return `local size = ${size}
if size > ${bound} then return redis.error_reply(${what} .. ' ' .. size .. ' bytes, more than the gate reads (${bound}): not a value the gate wrote (another tool\\'s, or one set by hand)') end
`
}
