'use strict'
// Who a SAS token speaks for. A token with skn= is signed with a shared access
// policy's key and carries that policy's rights; one without is signed with
// the symmetric key of the identity its resource names.

const sas = require('./sas')
const { HubError } = require('./registry')

function unauthorized (why) {
  return new HubError(401, 'IotHubUnauthorizedAccess', 'Unauthorized: ' + why)
}

// The parsed token, or a 401 naming what is wrong with it.
function readToken (token, skew) {
  let tok
  try {
    tok = sas.parse(token)
  } catch (e) {
    throw unauthorized(e.message)
  }
  if (sas.expired(tok, skew)) throw unauthorized('SAS token expired at ' + tok.expiry)
  return tok
}

// The identity path ("devices/<d>[/modules/<m>]") named by a token's resource.
function resourceIdentity (registry, tok) {
  const host = registry.hostname.toLowerCase()
  const r = tok.resource.replace(/\/+$/, '')
  if (!r.toLowerCase().startsWith(host + '/')) return null
  const m = /^devices\/([^/]+)(?:\/modules\/([^/]+))?$/.exec(r.slice(host.length + 1))
  return m ? { deviceId: m[1], moduleId: m[2] || null } : null
}

// A policy-signed token: the policy, if it has the right and the signature holds.
function policyPrincipal (registry, tok, right, target) {
  const policy = registry.policies[tok.skn]
  if (!policy) throw unauthorized('no shared access policy named ' + tok.skn)
  if (!sas.signedWith(tok, policy.keys)) throw unauthorized('signature does not match policy ' + tok.skn)
  if (!sas.covers(tok, target)) throw unauthorized('token resource ' + tok.resource + ' does not cover ' + target)
  if (!policy.rights.includes(right)) throw unauthorized('policy ' + tok.skn + ' lacks ' + right)
  return { policy: tok.skn }
}

// REST caller: a policy with `right`, or (when deviceAllowed) the device the
// token names, signed with that device's key. Throws a 401 otherwise.
function restPrincipal (registry, token, skew, right, target, deviceAllowed) {
  const tok = readToken(token, skew)
  if (tok.skn !== null) return policyPrincipal(registry, tok, right, target)
  const who = resourceIdentity(registry, tok)
  if (!who) throw unauthorized('token resource ' + tok.resource + ' is not a device of ' + registry.hostname)
  if (who.moduleId !== null || !deviceAllowed) throw unauthorized('this operation needs a shared access policy with ' + right)
  const device = registry.find(who.deviceId, null)
  if (!device || !sas.signedWith(tok, device.keys())) throw unauthorized('signature does not match a key of device ' + who.deviceId)
  if (!sas.covers(tok, target)) throw unauthorized('token resource ' + tok.resource + ' does not cover ' + target)
  return { device }
}

// MQTT CONNECT: the identity (device, or module when moduleId is set), or a
// reason it is refused.
function connectIdentity (registry, token, skew, deviceId, moduleId) {
  const tok = readToken(token, skew)
  const target = registry.hostname + '/devices/' + deviceId + (moduleId ? '/modules/' + moduleId : '')
  if (!sas.covers(tok, target)) throw unauthorized('token resource ' + tok.resource + ' does not cover ' + target)
  const identity = registry.find(deviceId, moduleId)
  if (!identity) throw unauthorized('no identity ' + target.slice(registry.hostname.length + 1))
  if (tok.skn !== null) policyPrincipal(registry, tok, 'DeviceConnect', target)
  else if (!sas.signedWith(tok, identity.keys())) throw unauthorized('signature does not match a key of ' + target.slice(registry.hostname.length + 1))
  const device = registry.find(deviceId, null)
  if (device.status !== 'enabled') throw unauthorized('device ' + deviceId + ' is disabled')
  return { identity, expiry: tok.expiry }
}

module.exports = { restPrincipal, connectIdentity }
