#!/usr/bin/env node
'use strict'
// aws-wif-supplier command line: `npx aws-wif-supplier doctor [--config FILE] [--json]`.
//
// doctor reports, without ever printing a secret (variable names, never values; masked key ids):
//   - the runtime this looks like (App Runner, ECS/Fargate, EKS Pod Identity, IRSA, EC2, static env
//     keys) and the evidence for it;
//   - the AWS region and where it came from; the AWS credential source and the expiry;
//   - with --config FILE or GOOGLE_APPLICATION_CREDENTIALS: every federation step (subject token,
//     STS exchange, impersonation), PASS or FAIL, and for a failure what to fix.
// Exit status: 0 when every step passed, 1 when one failed, 2 for a usage error.

const { existsSync } = require('node:fs')
const { GoogleTokenFetcher, diagnoseAws } = require('..')

const USAGE = 'usage: aws-wif-supplier doctor [--config FILE] [--json]'

function set(name) {
  const v = process.env[name]
  return typeof v === 'string' && v.trim() !== ''
}

/** Whether a shared config or credentials file exists where the AWS SDKs look for it. */
function profileFileExists() {
  const home = process.env.HOME ?? ''
  const paths = [process.env.AWS_CONFIG_FILE || (home && `${home}/.aws/config`), process.env.AWS_SHARED_CREDENTIALS_FILE || (home && `${home}/.aws/credentials`)]
  return paths.some((p) => p && existsSync(p))
}

/** Which AWS runtime the environment looks like, from variable names (and profile files' existence). */
function detectRuntime() {
  const evidence = (names) => names.filter(set)
  const fullUri = process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI ?? ''
  if (set('AWS_ACCESS_KEY_ID')) return { runtime: 'static environment keys', evidence: evidence(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) }
  if (set('AWS_WEB_IDENTITY_TOKEN_FILE')) return { runtime: 'EKS IRSA (web identity)', evidence: evidence(['AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_ROLE_SESSION_NAME']) }
  if (set('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI')) {
    const ecs = set('ECS_CONTAINER_METADATA_URI_V4') || set('ECS_CONTAINER_METADATA_URI')
    const launch = process.env.AWS_EXECUTION_ENV === 'AWS_ECS_FARGATE' ? 'ECS on Fargate' : process.env.AWS_EXECUTION_ENV === 'AWS_ECS_EC2' ? 'ECS on EC2' : 'ECS / Fargate'
    return {
      runtime: ecs ? launch : 'App Runner (or ECS without task metadata)',
      evidence: evidence(['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'ECS_CONTAINER_METADATA_URI_V4', 'ECS_CONTAINER_METADATA_URI', 'AWS_EXECUTION_ENV']),
    }
  }
  if (set('AWS_CONTAINER_CREDENTIALS_FULL_URI')) {
    const eks = /169\.254\.170\.23|fd00:ec2::23/i.test(fullUri)
    return {
      runtime: eks ? 'EKS Pod Identity' : 'container credentials endpoint (FULL_URI)',
      evidence: evidence(['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', 'AWS_CONTAINER_AUTHORIZATION_TOKEN']),
    }
  }
  if (set('AWS_PROFILE') || profileFileExists()) return { runtime: 'shared AWS profile', evidence: evidence(['AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE']) }
  if (String(process.env.AWS_EC2_METADATA_DISABLED).toLowerCase() === 'true') return { runtime: 'none found (IMDS disabled)', evidence: ['AWS_EC2_METADATA_DISABLED'] }
  return { runtime: 'EC2 instance metadata (IMDSv2), if this is an EC2 instance', evidence: [] }
}

function parseArgs(argv) {
  const [command, ...rest] = argv
  if (command !== 'doctor') return null
  const opts = { config: undefined, json: false }
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--json') opts.json = true
    else if (rest[i] === '--config' && rest[i + 1]) opts.config = rest[++i]
    else if (rest[i].startsWith('--config=')) opts.config = rest[i].slice('--config='.length)
    else return null
  }
  return opts
}

const LABEL = { ok: 'PASS', failed: 'FAIL', skipped: 'SKIP' }

function printHuman(runtime, configSource, steps) {
  console.log('aws-wif-supplier doctor')
  console.log(`  runtime       ${runtime.runtime}${runtime.evidence.length ? ` (evidence: ${runtime.evidence.join(', ')})` : ''}`)
  console.log(`  google config ${configSource ?? 'none (pass --config FILE or set GOOGLE_APPLICATION_CREDENTIALS to check the Google steps)'}`)
  for (const s of steps) {
    console.log(`${LABEL[s.status] ?? s.status} ${s.step.padEnd(14)} ${s.detail}`)
    if (s.status === 'failed' && s.hint) console.log(`     fix: ${s.hint}`)
  }
}

async function doctor(opts) {
  const runtime = detectRuntime()
  const configSource = opts.config ? opts.config : set('GOOGLE_APPLICATION_CREDENTIALS') ? 'GOOGLE_APPLICATION_CREDENTIALS' : null
  let steps
  try {
    if (configSource === null) steps = await diagnoseAws()
    else steps = await (opts.config ? GoogleTokenFetcher.fromCredentialConfig(opts.config) : GoogleTokenFetcher.fromEnv()).diagnose()
  } catch (e) {
    steps = [{ step: 'config', status: 'failed', detail: `${e.code ?? 'ERROR'}: ${e.message}`, code: e.code, hint: e.hint }]
  }
  if (opts.json) console.log(JSON.stringify({ runtime, config: configSource, steps }, null, 2))
  else printHuman(runtime, configSource, steps)
  return steps.some((s) => s.status === 'failed') ? 1 : 0
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (opts === null) {
    console.error(USAGE)
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
