// Route matching against Grape itself, on a part of the routing corpus (grape-routes.ts says what
// is checked; grape-routes.slow.ts checks all of it).

import { test } from 'node:test'
import { checkAgainstGrape, TITLE } from './grape-routes.ts'

test(`${TITLE} (600 paths)`, async (t) => { await checkAgainstGrape(t, 600) })
