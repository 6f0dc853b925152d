// The fuzz run of `npm run test:slow`: every in-suite input (suite-run.ts says what is checked;
// fuzz.test.ts runs a third of them in `npm test`).

import { fuzzTargets } from './suite-run.ts'

fuzzTargets(1, 4_000)
