'use strict'
// Process warnings about the AWS settings, each emitted once per process thread. The binding
// decides what is ignored (`ignoredSettings`, `profileOverridesEnvKeys`) and words the warnings
// (`__warnings()`, src/binding/warnings.rs); this file only emits them.

const { ignoredSetting, profileOverEnvKeys } = require('./loader.js').__warnings()

let warnedProfileOverEnv = false
const warnedIgnored = new Set()

/** One process warning per distinct setting the native chain ignores (half of a pair), once. */
function warnIgnored(native) {
  for (const message of native.ignoredSettings ?? []) {
    if (warnedIgnored.has(message)) continue
    warnedIgnored.add(message)
    process.emitWarning(message, { code: ignoredSetting.code })
  }
}

/** The warning when AWS_PROFILE makes the chain skip environment keys that are set too, once. */
function warnProfileOverEnvKeys(native) {
  if (!native.profileOverridesEnvKeys || warnedProfileOverEnv) return
  warnedProfileOverEnv = true
  process.emitWarning(profileOverEnvKeys.message, { code: profileOverEnvKeys.code })
}

module.exports = { warnIgnored, warnProfileOverEnvKeys }
