'use strict'
// Errors the JavaScript side throws, all made by the binding (src/binding/errors.rs), so that they
// have the shape of every native error (`code`, `retryable`, `hint`) and Rust decides the codes.

const binding = require('./loader.js')

/** A `CONFIG_INVALID` error (not thrown) with `message` and, when given, `hint`. */
const configInvalid = (message, hint) => binding.__configInvalid(message, hint)

/**
 * Run a native constructor or factory. Options of the wrong shape fail in napi-rs's argument
 * conversion (codes like `StringExpected`), before our validation: the binding reports those as
 * ours, `CONFIG_INVALID`, like every other invalid option.
 */
function construct(build) {
  try {
    return build()
  } catch (e) {
    throw binding.__optionsError(e)
  }
}

module.exports = { configInvalid, construct }
