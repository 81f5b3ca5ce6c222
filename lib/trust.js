'use strict'
// Node's trusted certificates, handed to the native HTTPS client (src/http/trust.rs) once per
// thread, and `trustSummary()`, which reports what native HTTPS trusts after that hand-over.

const binding = require('./loader.js')

let trustHandedOver = false

/**
 * Hand Node's trusted certificates to the native HTTPS client, once per thread: what Node itself
 * verifies against, so native HTTPS works where Node's does, e.g. in `node:*-slim` images whose
 * /etc/ssl/certs is empty. Node 22.15+/23.5+: `tls.getCACertificates('default')` (bundled roots,
 * NODE_EXTRA_CA_CERTS, and the system store under --use-system-ca); before that
 * `tls.rootCertificates` plus the NODE_EXTRA_CA_CERTS file. Only done when native HTTPS may be
 * used: reading the set costs a few milliseconds.
 */
function handOverTrust() {
  if (trustHandedOver) return
  const tls = require('node:tls')
  let pems
  if (typeof tls.getCACertificates === 'function') {
    pems = tls.getCACertificates('default')
  } else {
    pems = [...tls.rootCertificates]
    const extra = process.env.NODE_EXTRA_CA_CERTS
    if (extra) {
      try {
        pems.push(require('node:fs').readFileSync(extra, 'utf8'))
      } catch {
        // Node warns about an unreadable NODE_EXTRA_CA_CERTS at start-up and goes on without it.
      }
    }
  }
  binding.setNodeTrust(pems)
  trustHandedOver = true
}

function trustSummary() {
  handOverTrust()
  return binding.trustSummary()
}

module.exports = { handOverTrust, trustSummary }
