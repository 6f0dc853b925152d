// Route matching against Grape itself, on the whole routing corpus (`npm run test:rack`, also part
// of `npm run test:slow`); grape-routes.ts says what is checked.

import { test } from 'node:test'
import { checkAgainstGrape, TITLE } from './grape-routes.ts'

test(`${TITLE} (the whole corpus)`, async (t) => { await checkAgainstGrape(t, null) })
