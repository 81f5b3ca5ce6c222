// Which google-auth-library and @google-cloud/bigquery the suites run against.
//
// By default: the project's devDependencies (google-auth-library 10, BigQuery 8, on the Node that
// runs the tests). With WIF_TEST_DEPS_DIR=<a node_modules folder> they come from there instead:
// .ci/run sets it to __test__/gal11/node_modules and runs the suites with the Node 22 from that
// folder, so the same tests cover google-auth-library 11 with BigQuery 9 on Node 22.

import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const depsDir = process.env.WIF_TEST_DEPS_DIR

async function load(name) {
  if (!depsDir) return import(name)
  const resolved = createRequire(join(depsDir, '..', 'package.json')).resolve(name)
  return import(pathToFileURL(resolved).href)
}

const gal = await load('google-auth-library')
/** The google-auth-library module itself (what `require('google-auth-library')` returns there). */
export const googleAuthLibrary = gal.default ?? gal
export const { AwsClient } = gal
export const { BigQuery } = await load('@google-cloud/bigquery')

/** Absolute paths of the stack's modules, for code that must `require` them (e.g. in worker_threads). */
export const stackPaths = {
  googleAuthLibrary: createRequire(depsDir ? join(depsDir, '..', 'package.json') : import.meta.url).resolve('google-auth-library'),
  bigquery: createRequire(depsDir ? join(depsDir, '..', 'package.json') : import.meta.url).resolve('@google-cloud/bigquery'),
}

/** The version of google-auth-library in use (for test names and reports). */
export const galVersion = createRequire(depsDir ? join(depsDir, '..', 'package.json') : import.meta.url)('google-auth-library/package.json').version
