// The fuzz run of `npm test`: a third of the in-suite inputs, a new seed each run (suite-run.ts
// says what is checked; fuzz.slow.ts runs all of them).

import { fuzzTargets } from './suite-run.ts'

fuzzTargets(1 / 3, 1_500)
