#!/usr/bin/env node
'use strict'
// aws-wif-supplier command line: `npx aws-wif-supplier doctor [--config FILE] [--json]`.
//
// doctor reports, without ever printing a secret (variable names, never values; masked key ids):
//   - the AWS credential chain link by link, as the chain itself sees it (describeAwsChain), and so
//     the runtime (App Runner, ECS/Fargate, EKS Pod Identity, IRSA, a profile, EC2, static env keys)
//     with the evidence for it;
//   - the AWS region and where it came from; the AWS credential source and the expiry;
//   - with --config FILE or GOOGLE_APPLICATION_CREDENTIALS: every federation step (subject token,
//     STS exchange, impersonation), PASS or FAIL, and for a failure what to fix. All six steps are
//     listed even when the configuration cannot be loaded (the Google ones as not run);
//   - the google-auth-library copies that the application (the working directory: run doctor in
//     the application's folder) and its client libraries resolve, with a warning and the fix when
//     there is more than one (gal-copies.js). A warning does not change the exit status; a listing
//     that cannot be made (a removed working directory) says why, in `error` under --json.
// Exit status: 0 when every step passed, 1 when one failed, 2 for a usage error (an empty
// --config value included: `--config="$UNSET"` must not silently skip the Google steps).

const { GoogleTokenFetcher, describeAwsChain, describeProxy, diagnoseAws } = require('..')
const { googleAuthLibraryCopies } = require('./gal-copies.js')

const USAGE = 'usage: aws-wif-supplier doctor [--config FILE] [--json]'

function set(name) {
  const v = process.env[name]
  return typeof v === 'string' && v.trim() !== ''
}

/**
 * Which AWS runtime this is, as the credential chain itself decides it (the first configured link;
 * describeAwsChain() in index.d.ts): one truth for doctor and for the chain.
 */
function describeChain() {
  const chain = describeAwsChain()
  const selected = chain.find((l) => l.selected) ?? chain[chain.length - 1]
  return { runtime: { runtime: selected.runtime || selected.detail, evidence: selected.evidence }, chain }
}

/** What to give `--config` when its value is empty (`--config="$UNSET"`), which must not mean "no configuration". */
const EMPTY_CONFIG = 'aws-wif-supplier doctor: --config needs a file path, and its value is empty (an unset variable?); leave --config out to check the AWS side only'

/** `{ config, json }`, or `{ usage: line }` for a usage error. */
function parseArgs(argv) {
  const [command, ...rest] = argv
  if (command !== 'doctor') return { usage: USAGE }
  const opts = { config: undefined, json: false }
  for (let i = 0; i < rest.length; i++) {
    let value
    if (rest[i] === '--json') {
      opts.json = true
      continue
    } else if (rest[i] === '--config' && i + 1 < rest.length && !rest[i + 1].startsWith('--')) value = rest[++i]
    else if (rest[i].startsWith('--config=')) value = rest[i].slice('--config='.length)
    else return { usage: USAGE }
    if (value.trim() === '') return { usage: EMPTY_CONFIG }
    opts.config = value
  }
  return opts
}

const LABEL = { ok: 'PASS', failed: 'FAIL', skipped: 'SKIP' }

/** The google-auth-library copies of the application in the working directory; never throws. */
function authLibraries() {
  let dir = null
  try {
    dir = process.cwd() // throws when the working directory was removed
    return googleAuthLibraryCopies(dir)
  } catch (e) {
    return { application: { dir, name: null }, copies: [], scanned: 0, truncated: false, warning: null, error: String(e && e.message) }
  }
}

function printAuthLibraries(libs) {
  const app = `${libs.application.dir ?? '(unknown)'}${libs.application.name ? ` (${libs.application.name})` : ''}`
  console.log(`  application   ${app}: the working directory; run doctor in the application's folder`)
  if (libs.error) console.log(`  auth library  not listed: ${libs.error}`)
  else if (libs.copies.length === 0) console.log(`  auth library  none: no google-auth-library resolves from the application or the packages in its node_modules`)
  for (const c of libs.copies) console.log(`  auth library  ${c.version} at ${c.path}, used by ${c.usedBy.join(', ')}`)
  if (libs.truncated) console.log(`  auth library  (the first ${libs.scanned} packages of node_modules only: the list may be incomplete)`)
}

function printHuman(runtime, chain, configSource, steps, libs) {
  console.log('aws-wif-supplier doctor')
  console.log(`  runtime       ${runtime.runtime}${runtime.evidence.length ? ` (evidence: ${runtime.evidence.join(', ')})` : ''}`)
  for (const l of chain) console.log(`  chain         ${l.selected ? '*' : l.configured ? '+' : '-'} ${l.detail}`)
  console.log(`  proxy         ${describeProxy()}`)
  console.log(`  google config ${configSource ?? 'none (pass --config FILE or set GOOGLE_APPLICATION_CREDENTIALS to check the Google steps)'}`)
  printAuthLibraries(libs)
  for (const s of steps) {
    console.log(`${LABEL[s.status] ?? s.status} ${s.step.padEnd(14)} ${s.detail}`)
    if (s.status === 'failed' && s.hint) console.log(`     fix: ${s.hint}`)
  }
  if (libs.warning) {
    console.log(`WARN ${'auth_library'.padEnd(14)} ${libs.warning.message}`)
    for (const fix of libs.warning.fixes) console.log(`     fix: ${fix}`)
  }
}

/** The Google steps, which need a loaded configuration (the last three of FetcherCore::diagnose, src/google/fetcher.rs STEPS). */
const GOOGLE_STEPS = ['subject_token', 'sts', 'impersonation']

/**
 * Every step when the configuration could not be loaded: config failed, the AWS steps run as
 * without a configuration (they do not depend on it), and the Google steps not run, with the reason.
 */
async function unloadedConfigSteps(e) {
  const config = { step: 'config', status: 'failed', detail: `${e.code ?? 'ERROR'}: ${e.message}`, code: e.code, hint: e.hint }
  const notRun = GOOGLE_STEPS.map((step) => ({ step, status: 'skipped', detail: 'not run: the configuration could not be loaded' }))
  return [config, ...(await diagnoseAws()), ...notRun]
}

async function doctor(opts) {
  const { runtime, chain } = describeChain()
  const configSource = opts.config ? opts.config : set('GOOGLE_APPLICATION_CREDENTIALS') ? 'GOOGLE_APPLICATION_CREDENTIALS' : null
  let steps
  if (configSource === null) steps = await diagnoseAws()
  else {
    let fetcher = null
    try {
      fetcher = opts.config ? GoogleTokenFetcher.fromCredentialConfig(opts.config) : GoogleTokenFetcher.fromEnv()
    } catch (e) {
      steps = await unloadedConfigSteps(e)
    }
    if (fetcher) steps = await fetcher.diagnose()
  }
  const googleAuthLibrary = authLibraries()
  if (opts.json) console.log(JSON.stringify({ runtime, chain, proxy: describeProxy(), config: configSource, steps, googleAuthLibrary }, null, 2))
  else printHuman(runtime, chain, configSource, steps, googleAuthLibrary)
  return steps.some((s) => s.status === 'failed') ? 1 : 0
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.usage) {
    console.error(opts.usage)
    return 2
  }
  return doctor(opts)
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e) => {
    console.error(`aws-wif-supplier: ${e && e.message}`)
    process.exitCode = 1
  },
)
