'use strict'
// SAS tokens as IoT Hub reads them:
//   SharedAccessSignature sr=<urlenc(resource)>&sig=<urlenc(base64 hmac)>&se=<expiry>[&skn=<policy>]
// The signature is HMAC-SHA256, keyed with the base64-decoded key, over the
// sr field exactly as sent (its escapes keep their case), "\n", and the expiry.
// The resource is a URI prefix, compared by segment and without regard to case.

const crypto = require('crypto')

const MAX_TOKEN = 4096
const PREFIX = 'SharedAccessSignature '

class SasError extends Error {}

function parse (token) {
  if (typeof token !== 'string' || token.length === 0) throw new SasError('no SAS token')
  if (token.length > MAX_TOKEN) throw new SasError('SAS token longer than ' + MAX_TOKEN + ' bytes')
  if (!token.startsWith(PREFIX)) throw new SasError('not a SharedAccessSignature token')
  const fields = {}
  for (const part of token.slice(PREFIX.length).split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    if (eq <= 0) throw new SasError('malformed SAS field "' + part.slice(0, 32) + '"')
    const name = part.slice(0, eq).toLowerCase()
    if (Object.prototype.hasOwnProperty.call(fields, name)) throw new SasError('SAS field ' + name + ' given twice')
    fields[name] = part.slice(eq + 1)
  }
  for (const f of ['sr', 'sig', 'se']) {
    if (!fields[f]) throw new SasError('SAS token without ' + f)
  }
  let resource, sig, skn
  try {
    resource = decodeURIComponent(fields.sr)
    sig = decodeURIComponent(fields.sig)
    skn = fields.skn === undefined ? null : decodeURIComponent(fields.skn)
  } catch (e) {
    throw new SasError('SAS token with a bad %-escape')
  }
  if (!/^[0-9]{1,12}$/.test(fields.se)) throw new SasError('SAS expiry "' + fields.se.slice(0, 16) + '" is not a number of seconds')
  return { srRaw: fields.sr, resource, sig, expiry: Number(fields.se), seRaw: fields.se, skn }
}

function sign (keyB64, srRaw, seRaw) {
  return crypto.createHmac('sha256', Buffer.from(keyB64, 'base64')).update(srRaw + '\n' + seRaw).digest('base64')
}

// True when the token was signed with one of the keys (base64 strings).
function signedWith (tok, keys) {
  const given = Buffer.from(tok.sig)
  for (const key of keys) {
    if (!key) continue
    const want = Buffer.from(sign(key, tok.srRaw, tok.seRaw))
    if (want.length === given.length && crypto.timingSafeEqual(want, given)) return true
  }
  return false
}

function expired (tok, skewSeconds, nowMs) {
  return tok.expiry + skewSeconds < Math.floor((nowMs === undefined ? Date.now() : nowMs) / 1000)
}

// Whether the token's resource covers target ("<hub>/devices/<d>[/modules/<m>]").
function covers (tok, target) {
  const sr = tok.resource.replace(/\/+$/, '').toLowerCase()
  const t = target.toLowerCase()
  return t === sr || t.startsWith(sr + '/')
}

function create (resource, keyB64, expiry, policy) {
  const sr = encodeURIComponent(resource)
  const sig = encodeURIComponent(sign(keyB64, sr, String(expiry)))
  return PREFIX + 'sr=' + sr + '&sig=' + sig + '&se=' + expiry + (policy ? '&skn=' + encodeURIComponent(policy) : '')
}

module.exports = { parse, signedWith, expired, covers, create, SasError }
