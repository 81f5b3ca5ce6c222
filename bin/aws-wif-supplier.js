#!/usr/bin/env node
'use strict'
// aws-wif-supplier command line: `npx aws-wif-supplier doctor [--config FILE] [--json]`, and
// `aws-wif-supplier metadata-server [--host 127.0.0.1] [--port N] [--config FILE] [--project ID]`
// (the GCE metadata server protocol on this workload's tokens: lib/metadata-server.js; see
// metadataServer() below).
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
//     that cannot be made (a removed working directory) says why, in `error` under --json;
//   - when GCE_METADATA_HOST is set (never otherwise): whether it points at an aws-wif-supplier
//     metadata server (its version), at another server, or at nothing: one GET with
//     `Metadata-Flavor: Google`, at most 1 s (identifyMetadataServer in lib/metadata-server.js).
//     Informational: it does not change the exit status. `metadataServer` under --json (null when
//     the variable is unset).
// Exit status: 0 when every step passed, 1 when one failed, 2 for a usage error (an empty
// --config value included: `--config="$UNSET"` must not silently skip the Google steps).

const { GoogleTokenFetcher, describeAwsChain, describeProxy, diagnoseAws } = require('..')
const { googleAuthLibraryCopies } = require('./gal-copies.js')
/** The package's binding, for what Rust decides and the CLI needs (its internal `__` helpers). */
const { binding } = require('../lib/native.js')
/** The file GOOGLE_APPLICATION_CREDENTIALS names, as GoogleTokenFetcher.fromEnv() reads it (null when unset or blank). */
const credentialsPath = () => binding.__credentialsPath()

const USAGE = 'usage: aws-wif-supplier doctor [--config FILE] [--json]\n       aws-wif-supplier metadata-server [--host 127.0.0.1] [--port N] [--config FILE] [--project ID]'

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

/** What GCE_METADATA_HOST points at (lib/metadata-server.js), or null when it is unset: nothing is probed then. */
function metadataHost() {
  if (!set('GCE_METADATA_HOST')) return Promise.resolve(null)
  return require('../lib/metadata-server.js').identifyMetadataServer(process.env.GCE_METADATA_HOST)
}

function printHuman(runtime, chain, configSource, steps, libs, metadata) {
  console.log('aws-wif-supplier doctor')
  console.log(`  runtime       ${runtime.runtime}${runtime.evidence.length ? ` (evidence: ${runtime.evidence.join(', ')})` : ''}`)
  for (const l of chain) console.log(`  chain         ${l.selected ? '*' : l.configured ? '+' : '-'} ${l.detail}`)
  console.log(`  proxy         ${describeProxy()}`)
  console.log(`  google config ${configSource ?? 'none (pass --config FILE or set GOOGLE_APPLICATION_CREDENTIALS to check the Google steps)'}`)
  printAuthLibraries(libs)
  if (metadata) console.log(`  metadata host ${metadata.detail}`)
  for (const s of steps) {
    console.log(`${LABEL[s.status] ?? s.status} ${s.step.padEnd(14)} ${s.detail}`)
    if (s.status === 'failed' && s.hint) console.log(`     fix: ${s.hint}`)
  }
  if (libs.warning) {
    console.log(`WARN ${'auth_library'.padEnd(14)} ${libs.warning.message}`)
    for (const fix of libs.warning.fixes) console.log(`     fix: ${fix}`)
  }
}


/**
 * Every step when the configuration could not be loaded: config failed, the AWS steps run as
 * without a configuration (they do not depend on it), and the Google steps not run, with the reason.
 */
async function unloadedConfigSteps(e) {
  const config = { step: 'config', status: 'failed', detail: `${e.code ?? 'ERROR'}: ${e.message}`, code: e.code, hint: e.hint }
  // The Google steps (the binding's list): they need a loaded configuration.
  const notRun = binding.__googleSteps().map((step) => ({ step, status: 'skipped', detail: 'not run: the configuration could not be loaded' }))
  return [config, ...(await diagnoseAws()), ...notRun]
}

async function doctor(opts) {
  const { runtime, chain } = describeChain()
  const configSource = opts.config ? opts.config : credentialsPath() != null ? 'GOOGLE_APPLICATION_CREDENTIALS' : null
  const probe = metadataHost() // while the steps run
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
  const metadataServer = await probe
  if (opts.json) console.log(JSON.stringify({ runtime, chain, proxy: describeProxy(), config: configSource, steps, googleAuthLibrary, metadataServer }, null, 2))
  else printHuman(runtime, chain, configSource, steps, googleAuthLibrary, metadataServer)
  return steps.some((s) => s.status === 'failed') ? 1 : 0
}

/** `{ host, port, config, project }` of `metadata-server`, or `{ usage: line }`. */
function parseServerArgs(rest) {
  const opts = { host: '127.0.0.1', port: 0, config: undefined, project: undefined }
  const names = { '--host': 'host', '--port': 'port', '--config': 'config', '--project': 'project' }
  for (let i = 0; i < rest.length; i++) {
    const eq = rest[i].indexOf('=')
    const flag = eq > 0 ? rest[i].slice(0, eq) : rest[i]
    const key = names[flag]
    if (!key) return { usage: USAGE }
    let value
    if (eq > 0) value = rest[i].slice(eq + 1)
    else if (i + 1 < rest.length) value = rest[++i]
    else return { usage: `aws-wif-supplier metadata-server: ${flag} needs a value` }
    if (value.trim() === '') return { usage: `aws-wif-supplier metadata-server: ${flag} needs a value, and its value is empty (an unset variable?)` }
    opts[key] = value
  }
  if (!/^\d+$/.test(String(opts.port)) || Number(opts.port) > 65535) return { usage: `aws-wif-supplier metadata-server: --port must be a number from 0 to 65535` }
  opts.port = Number(opts.port)
  return opts
}

/**
 * Serve the GCE metadata protocol until SIGTERM or SIGINT (then exit 0). One line on stdout when
 * ready (`… listening on http://HOST:PORT`); a configuration that cannot be loaded or an address
 * that cannot be bound: one line on stderr, exit 1.
 */
async function metadataServer(opts) {
  const name = 'aws-wif-supplier metadata-server'
  if (!opts.config && credentialsPath() == null) {
    console.error(`${name}: no credential configuration: pass --config FILE or set GOOGLE_APPLICATION_CREDENTIALS (the file gcloud iam workload-identity-pools create-cred-config --aws writes)`)
    return 1
  }
  let fetcher
  try {
    fetcher = opts.config ? GoogleTokenFetcher.fromCredentialConfig(opts.config) : GoogleTokenFetcher.fromEnv()
  } catch (e) {
    console.error(`${name}: the credential configuration cannot be used: ${e.code ?? 'ERROR'}: ${oneLine(e.message)}`)
    return 1
  }
  let server
  try {
    server = await fetcher.serveMetadata({ host: opts.host, port: opts.port, projectId: opts.project })
  } catch (e) {
    const why = e.code === 'EADDRINUSE' ? 'the address is in use' : e.code === 'EADDRNOTAVAIL' ? 'no interface has that address' : e.code === 'EACCES' ? 'permission denied' : oneLine(e.message)
    console.error(`${name}: cannot listen on ${opts.host}:${opts.port}: ${why}${e.code ? ` (${e.code})` : ''}`)
    return 1
  }
  console.log(`${name}: listening on ${server.url}`)
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      server.close().then(() => resolve(0))
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}

const oneLine = (text) => String(text ?? '').replace(/\s*\n\s*/g, ' ')

async function main() {
  const argv = process.argv.slice(2)
  if (argv[0] === 'metadata-server') {
    const opts = parseServerArgs(argv.slice(1))
    if (opts.usage) {
      console.error(opts.usage)
      return 2
    }
    // A background refresh in flight must not hold the process past the signal.
    return metadataServer(opts).then((code) => process.exit(code))
  }
  const opts = parseArgs(argv)
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
