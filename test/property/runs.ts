/**
 * The run count for fast-check properties: the default a test file picks
 * (kept small so the suite stays fast on a 2-core machine), unless the
 * environment variable FC_NUM_RUNS asks for more (or fewer) runs.
 */
export function numRuns(defaultCount: number): number {
  const raw = process.env['FC_NUM_RUNS'];
  if (raw === undefined || raw === '') return defaultCount;
  const n = Number(raw);
  return Number.isInteger(n) && n > 0 ? n : defaultCount;
}
