// Fleet simulation: at fleet scale the cost is Google STS and IAM quota, not CPU.
//
// A deterministic (seeded) model of N processes that start within a short window (a deploy), each
// holding one Google access token. Every process exchanges once at start; each exchange is one STS
// token exchange plus one IAM generateAccessToken (impersonation). A token lives TOKEN_LIFETIME_S and
// is refreshed at `expiry − margin − jitter`, jitter drawn uniformly from [0, jitterS) at every refresh.
// google-auth-library and the current native cache refresh at exactly `expiry − 5 min` (jitter 0).
//
// Reported per scenario: exchanges per minute at the start (the deploy burst, set by how fast the fleet
// starts, not by the refresh policy), the peak minute of every hour (a herd shows as the start burst
// recurring every 55 minutes), the last hour's peak, the average over the whole run, and these against
// the published default quotas (assumptions, per project, from cloud.google.com/iam/quotas):
//   Security Token Service API, exchange token requests (workload identity federation): 6,000 / min
//   Service Account Credentials API, requests to generate credentials:                   60,000 / min
//
//   node __test__/bench/fleet.mjs          prints the scenarios as JSON

export const QUOTAS = Object.freeze({ stsPerMinute: 6_000, iamPerMinute: 60_000 })
export const TOKEN_LIFETIME_S = 3600
export const MARGIN_S = 300

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Exchanges per simulated minute for one scenario. */
export function simulateFleet({ processes, startWindowS, jitterS, horizonS, seed = 1, lifetimeS = TOKEN_LIFETIME_S, marginS = MARGIN_S }) {
  const random = prng(seed)
  const perMinute = new Array(Math.ceil(horizonS / 60)).fill(0)
  for (let p = 0; p < processes; p++) {
    for (let t = random() * startWindowS; t < horizonS; t += lifetimeS - marginS - random() * jitterS) {
      perMinute[Math.floor(t / 60)] += 1
    }
  }
  return perMinute
}

/** Peak and average exchanges per minute: at the start, in every hour, and in the last hour. */
export function summarise(perMinute, { startWindowS }) {
  const startMinutes = Math.max(1, Math.ceil(startWindowS / 60))
  const hours = Array.from({ length: Math.floor(perMinute.length / 60) }, (_, h) => perMinute.slice(h * 60, (h + 1) * 60))
  const lastHour = hours.at(-1)
  const lastHourPeak = Math.max(...lastHour)
  return {
    startPeak: Math.max(...perMinute.slice(0, startMinutes)),
    hourlyPeaks: hours.map((minutes) => Math.max(...minutes)),
    lastHourPeak,
    averagePerMinute: perMinute.reduce((a, b) => a + b, 0) / perMinute.length,
    startPeakOfStsQuota: Math.max(...perMinute.slice(0, startMinutes)) / QUOTAS.stsPerMinute,
    lastHourPeakOfStsQuota: lastHourPeak / QUOTAS.stsPerMinute,
    lastHourPeakOfIamQuota: lastHourPeak / QUOTAS.iamPerMinute,
  }
}

/** The scenarios the benchmark reports: the same fleet, without and with refresh jitter. */
export function fleetScenarios({ processes = 10_000, startWindowS = 60, horizonS = 8 * 3600, seed = 2026 } = {}) {
  return [
    { name: 'no jitter (expiry − 5 min)', jitterS: 0 },
    { name: 'jitter U[0, 5 min) before the margin', jitterS: 300 },
    { name: 'jitter U[0, 15 min) before the margin', jitterS: 900 },
  ].map(({ name, jitterS }) => {
    const params = { processes, startWindowS, jitterS, horizonS, seed }
    return { name, ...params, ...summarise(simulateFleet(params), params) }
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify({ quotas: QUOTAS, scenarios: fleetScenarios() }, null, 2))
}
