'use strict'
// Process warnings about the AWS settings, each emitted once per process thread. The native chain
// decides what is ignored (`ignoredSettings`, `profileOverridesEnvKeys`); this file only emits.

let warnedProfileOverEnv = false
const warnedIgnored = new Set()

/** One process warning per distinct setting the native chain ignores (half of a pair), once. */
function warnIgnored(native) {
  for (const message of native.ignoredSettings ?? []) {
    if (warnedIgnored.has(message)) continue
    warnedIgnored.add(message)
    process.emitWarning(message, { code: 'AWS_WIF_SUPPLIER_IGNORED_SETTING' })
  }
}

/** The warning when AWS_PROFILE makes the chain skip environment keys that are set too, once. */
function warnProfileOverEnvKeys(native) {
  if (!native.profileOverridesEnvKeys || warnedProfileOverEnv) return
  warnedProfileOverEnv = true
  process.emitWarning(
    'Both AWS_PROFILE and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set: the AWS_PROFILE profile is used and the keys are ignored, as the AWS SDK for JavaScript does. Unset one of them.',
    { code: 'AWS_WIF_SUPPLIER_PROFILE_OVER_ENV_KEYS' },
  )
}

module.exports = { warnIgnored, warnProfileOverEnvKeys }
