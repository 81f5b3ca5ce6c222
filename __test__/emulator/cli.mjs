#!/usr/bin/env node
// Run the loopback emulator as a process, for child-process tests and manual demos.
//
//   node __test__/emulator/cli.mjs [--host 127.0.0.1] [--port 0] [--config '{"containerAuthToken":"x"}']
//
// Prints one JSON line {"url": "...", "urls": [...]} on stdout once listening, then serves until
// SIGTERM or SIGINT, closes every connection and exits 0. Listens on 127.0.0.1 unless told otherwise.

import { parseArgs } from 'node:util'
import { startEmulator } from './index.mjs'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    config: { type: 'string', default: '{}' },
  },
})

const em = await startEmulator({
  listen: [{ host: values.host, port: Number(values.port) }],
  config: JSON.parse(values.config),
})
process.stdout.write(`${JSON.stringify({ url: em.url, urls: em.urls })}\n`)

const stop = () => {
  process.off('SIGTERM', stop)
  process.off('SIGINT', stop)
  // With every socket destroyed nothing keeps the event loop alive: the process exits by itself.
  em.close().then(() => (process.exitCode = 0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
