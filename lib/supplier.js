'use strict'
// ContainerAwsCredentialsSupplier (google-auth-library's AwsSecurityCredentialsSupplier) and
// diagnoseAws(): the native ones (src/binding/supplier.rs), with this thread's memos in front.

const { inspect } = require('node:util')
const { binding, construct, handOverTrust, warnIgnored, warnProfileOverEnvKeys } = require('./native.js')
const { Memo } = require('./memo.js')

/**
 * A drop-in `AwsSecurityCredentialsSupplier` for google-auth-library's `AwsClient`.
 * See index.d.ts for the documentation.
 */
class ContainerAwsCredentialsSupplier {
  #native
  #region = new Memo()
  #credentials = new Memo()

  constructor(options) {
    this.#native = construct(() => new binding.ContainerAwsCredentialsSupplier(options))
    if (this.#native.mayUseHttps) handOverTrust()
    warnIgnored(this.#native)
    warnProfileOverEnvKeys(this.#native)
  }

  getAwsRegion(context) {
    return this.#region.get(() => this.#native.getAwsRegion(context).then((value) => ({ value, until: Infinity })))
  }

  getAwsSecurityCredentials(context) {
    return this.#credentials.get(() =>
      this.#native.credentialsLease().then((lease) => ({ value: Object.freeze(lease.credentials), until: lease.refreshAt })),
    )
  }

  toJSON() {
    return { type: 'ContainerAwsCredentialsSupplier' }
  }

  [inspect.custom]() {
    return 'ContainerAwsCredentialsSupplier {}'
  }
}

/** The AWS side only; options of the wrong type reject with CONFIG_INVALID like every entry point. */
function diagnoseAws(options) {
  try {
    handOverTrust()
    return construct(() => binding.diagnoseAws(options))
  } catch (e) {
    return Promise.reject(e)
  }
}

module.exports = { ContainerAwsCredentialsSupplier, diagnoseAws }
