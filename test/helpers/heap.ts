// The heap in use after full collections, for tests that bound what a cache keeps.

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** MiB of heap in use once two full collections have run. */
export const heapMiB = (): number => { gc(); gc(); return process.memoryUsage().heapUsed / 1048576 }
