'use strict'
// The identity registry: devices, their modules, the keys IoT Hub holds for
// them, etags and generation ids, the hub's shared access policies, and the
// twin of each identity. Every edge device has $edgeAgent and $edgeHub.

const crypto = require('crypto')
const { Twin } = require('./twin')

class HubError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

// IoT Hub's character sets for identifiers (case-sensitive, up to 128).
const DEVICE_ID = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/
const MODULE_ID = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/
const SYSTEM_MODULES = ['$edgeAgent', '$edgeHub']

// Permissions of the policies a new hub comes with.
const POLICY_RIGHTS = {
  iothubowner: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
  service: ['ServiceConnect'],
  device: ['DeviceConnect'],
  registryRead: ['RegistryRead'],
  registryReadWrite: ['RegistryRead', 'RegistryWrite']
}

function newKey () {
  return crypto.randomBytes(32).toString('base64')
}

function checkKey (k) {
  if (typeof k !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(k) || k.length % 4 !== 0) {
    throw new HubError(400, 'ArgumentInvalid', 'Symmetric key is not valid base64')
  }
  const n = Buffer.from(k, 'base64').length
  if (n < 16 || n > 64) throw new HubError(400, 'ArgumentInvalid', 'Invalid device key length: keys are 16 to 64 bytes')
}

// The authentication section of a PUT body, as IoT Hub stores it: both keys
// or neither (then the hub makes them), "none" becomes "sas" for modules.
function readAuth (auth, isModule) {
  if (auth === undefined || auth === null) auth = { type: 'sas' }
  if (typeof auth !== 'object' || Array.isArray(auth)) throw new HubError(400, 'ArgumentInvalid', '"authentication" is not an object')
  let type = auth.type === undefined ? 'sas' : auth.type
  if (type === 'none' && isModule) type = 'sas'
  if (!['sas', 'selfSigned', 'certificateAuthority'].includes(type)) {
    throw new HubError(400, 'ArgumentInvalid', 'authentication type "' + String(type).slice(0, 32) + '" is not supported')
  }
  const out = { type, primaryKey: null, secondaryKey: null, primaryThumbprint: null, secondaryThumbprint: null }
  if (type === 'sas') {
    const sk = auth.symmetricKey || {}
    const p = sk.primaryKey || null
    const s = sk.secondaryKey || null
    if ((p === null) !== (s === null)) throw new HubError(400, 'ArgumentInvalid', 'Either no keys or both keys can be set')
    if (p !== null) { checkKey(p); checkKey(s) }
    out.primaryKey = p || newKey()
    out.secondaryKey = s || newKey()
  } else if (type === 'selfSigned') {
    const t = auth.x509Thumbprint || {}
    out.primaryThumbprint = t.primaryThumbprint || null
    out.secondaryThumbprint = t.secondaryThumbprint || null
  }
  return out
}

function authJSON (a) {
  return {
    symmetricKey: { primaryKey: a.primaryKey, secondaryKey: a.secondaryKey },
    x509Thumbprint: { primaryThumbprint: a.primaryThumbprint, secondaryThumbprint: a.secondaryThumbprint },
    type: a.type
  }
}

let etagCounter = Date.now()
function nextEtag () {
  return Buffer.from(String(++etagCounter)).toString('base64')
}

function generationId () {
  return '63' + String(BigInt('0x' + crypto.randomBytes(8).toString('hex')) % 10n ** 16n).padStart(16, '0')
}

function matchEtag (ifMatch, etag) {
  if (ifMatch === '*') return true
  return ifMatch.replace(/^W\//, '').replace(/^"(.*)"$/, '$1') === etag
}

class Identity {
  constructor (deviceId, moduleId, auth) {
    this.deviceId = deviceId
    this.moduleId = moduleId
    this.auth = auth
    this.generationId = generationId()
    this.etag = nextEtag()
    this.managedBy = null
    this.twin = new Twin()
    this.connected = false
    this.connectionStateUpdatedTime = '0001-01-01T00:00:00Z'
    this.lastActivityTime = '0001-01-01T00:00:00Z'
  }

  keys () {
    return this.auth.type === 'sas' ? [this.auth.primaryKey, this.auth.secondaryKey] : []
  }

  setConnected (on) {
    this.connected = on
    this.connectionStateUpdatedTime = new Date().toISOString()
    if (on) this.lastActivityTime = this.connectionStateUpdatedTime
  }

  common () {
    return {
      deviceId: this.deviceId,
      generationId: this.generationId,
      etag: this.etag,
      connectionState: this.connected ? 'Connected' : 'Disconnected',
      connectionStateUpdatedTime: this.connectionStateUpdatedTime,
      lastActivityTime: this.lastActivityTime,
      cloudToDeviceMessageCount: 0,
      authentication: authJSON(this.auth)
    }
  }
}

class Module extends Identity {
  toJSON () {
    return Object.assign({ moduleId: this.moduleId, managedBy: this.managedBy }, this.common())
  }
}

class Device extends Identity {
  constructor (deviceId, auth) {
    super(deviceId, null, auth)
    this.status = 'enabled'
    this.statusReason = null
    this.statusUpdatedTime = '0001-01-01T00:00:00Z'
    this.iotEdge = false
    this.modules = new Map()
    // The modules' desired properties of the last deployment applied to the
    // device: a module identity created later starts with them, as in IoT Hub.
    this.modulesContent = {}
    this.deviceScope = ''
  }

  toJSON () {
    const out = this.common()
    Object.assign(out, {
      status: this.status,
      statusReason: this.statusReason,
      statusUpdatedTime: this.statusUpdatedTime,
      capabilities: { iotEdge: this.iotEdge }
    })
    if (this.iotEdge) out.deviceScope = this.deviceScope
    return out
  }
}

function checkBodyIds (body, deviceId, moduleId) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HubError(400, 'ArgumentInvalid', 'request body is not a JSON object')
  if (body.deviceId !== undefined && body.deviceId !== deviceId) {
    throw new HubError(400, 'ArgumentInvalid', 'deviceId in the body ("' + String(body.deviceId).slice(0, 128) + '") does not match the URL')
  }
  if (moduleId !== undefined && body.moduleId !== undefined && body.moduleId !== moduleId) {
    throw new HubError(400, 'ArgumentInvalid', 'moduleId in the body ("' + String(body.moduleId).slice(0, 128) + '") does not match the URL')
  }
}

class Registry {
  constructor (hostname, policyKeys) {
    this.hostname = hostname
    this.devices = new Map()
    this.policies = {}
    for (const [name, rights] of Object.entries(POLICY_RIGHTS)) {
      this.policies[name] = { rights, keys: (policyKeys && policyKeys[name]) || [newKey(), newKey()] }
    }
    // Subscriptions of persistent (clean session 0) MQTT sessions by client id.
    this.sessions = {}
    this.onChange = () => {}
    this.onRemove = () => {}
  }

  device (deviceId) {
    const d = this.devices.get(deviceId)
    if (!d) throw new HubError(404, 'DeviceNotFound', 'Device ' + deviceId + ' not found')
    return d
  }

  module (deviceId, moduleId) {
    const m = this.device(deviceId).modules.get(moduleId)
    if (!m) throw new HubError(404, 'ModuleNotFound', 'Module ' + moduleId + ' not found on device ' + deviceId)
    return m
  }

  // A module's twin: IoT Hub answers DeviceNotFound for a missing one.
  twinIdentity (deviceId, moduleId) {
    const m = this.device(deviceId).modules.get(moduleId)
    if (!m) throw new HubError(404, 'DeviceNotFound', 'Module twin ' + deviceId + '/' + moduleId + ' not found')
    return m
  }

  // The identity of a connection or of a REST path, or null.
  find (deviceId, moduleId) {
    const d = this.devices.get(deviceId)
    if (!d || !moduleId) return d || null
    return d.modules.get(moduleId) || null
  }

  putDevice (deviceId, body, ifMatch) {
    if (!DEVICE_ID.test(deviceId)) throw new HubError(400, 'ArgumentInvalid', 'Device id "' + deviceId.slice(0, 130) + '" is invalid')
    checkBodyIds(body, deviceId)
    const existing = this.devices.get(deviceId)
    if (existing && ifMatch === undefined) throw new HubError(409, 'DeviceAlreadyExists', 'A device with ID ' + deviceId + ' is already registered')
    if (!existing && ifMatch !== undefined) throw new HubError(404, 'DeviceNotFound', 'Device ' + deviceId + ' not found')
    if (existing && !matchEtag(ifMatch, existing.etag)) throw new HubError(412, 'PreconditionFailed', 'Precondition failed: etag does not match')
    const auth = readAuth(body.authentication, false)
    const d = existing || new Device(deviceId, auth)
    if (existing) {
      d.auth = auth
      d.etag = nextEtag()
    }
    if (body.status !== undefined) {
      if (body.status !== 'enabled' && body.status !== 'disabled') throw new HubError(400, 'ArgumentInvalid', 'status must be "enabled" or "disabled"')
      if (body.status !== d.status) d.statusUpdatedTime = new Date().toISOString()
      d.status = body.status
    }
    if (body.statusReason !== undefined) d.statusReason = body.statusReason
    const edge = !!(body.capabilities && body.capabilities.iotEdge)
    if (edge && !d.iotEdge) {
      d.deviceScope = 'ms-azure-iot-edge://' + deviceId + '-' + Date.now()
      for (const sys of SYSTEM_MODULES) {
        if (!d.modules.has(sys)) d.modules.set(sys, Object.assign(new Module(deviceId, sys, readAuth(null, true)), { managedBy: 'iotEdge' }))
      }
    }
    d.iotEdge = edge
    this.devices.set(deviceId, d)
    this.onChange()
    return d
  }

  deleteDevice (deviceId, ifMatch) {
    const d = this.device(deviceId)
    if (ifMatch === undefined) throw new HubError(412, 'PreconditionFailed', 'Etag missing: If-Match is required to delete')
    if (!matchEtag(ifMatch, d.etag)) throw new HubError(412, 'PreconditionFailed', 'Precondition failed: etag does not match')
    this.devices.delete(deviceId)
    for (const m of d.modules.values()) this.onRemove(m)
    this.onRemove(d)
    this.onChange()
  }

  putModule (deviceId, moduleId, body, ifMatch) {
    const d = this.device(deviceId)
    if (!MODULE_ID.test(moduleId)) throw new HubError(400, 'ArgumentInvalid', 'Module id "' + moduleId.slice(0, 130) + '" is invalid')
    checkBodyIds(body, deviceId, moduleId)
    const existing = d.modules.get(moduleId)
    if (existing && ifMatch === undefined) {
      throw new HubError(409, 'ModuleAlreadyExistsOnDevice', 'A module with ID ' + moduleId + ' is already registered on device ' + deviceId)
    }
    if (!existing && ifMatch !== undefined) throw new HubError(404, 'ModuleNotFound', 'Module ' + moduleId + ' not found on device ' + deviceId)
    if (existing && !matchEtag(ifMatch, existing.etag)) throw new HubError(412, 'PreconditionFailed', 'Precondition failed: etag does not match')
    if (!existing && moduleId.startsWith('$')) {
      throw new HubError(400, 'ArgumentInvalid', 'Module id ' + moduleId + ' is reserved for IoT Edge system modules')
    }
    const auth = readAuth(body.authentication, true)
    let m = existing
    if (m) {
      m.auth = auth
      m.etag = nextEtag()
    } else {
      m = new Module(deviceId, moduleId, auth)
      if (d.modulesContent[moduleId] !== undefined) m.twin.replaceDesired(d.modulesContent[moduleId])
      d.modules.set(moduleId, m)
    }
    if (body.managedBy !== undefined) m.managedBy = body.managedBy
    this.onChange()
    return m
  }

  deleteModule (deviceId, moduleId, ifMatch) {
    const d = this.device(deviceId)
    const m = this.module(deviceId, moduleId)
    if (ifMatch === undefined) throw new HubError(412, 'PreconditionFailed', 'Etag missing: If-Match is required to delete')
    if (!matchEtag(ifMatch, m.etag)) throw new HubError(412, 'PreconditionFailed', 'Precondition failed: etag does not match')
    if (SYSTEM_MODULES.includes(moduleId) && d.iotEdge) {
      throw new HubError(400, 'ArgumentInvalid', 'The IoT Edge system module ' + moduleId + ' cannot be deleted')
    }
    d.modules.delete(moduleId)
    this.onRemove(m)
    this.onChange()
  }

  toJSON () {
    const devices = []
    for (const d of this.devices.values()) {
      devices.push({
        deviceId: d.deviceId,
        auth: d.auth,
        generationId: d.generationId,
        etag: d.etag,
        status: d.status,
        statusReason: d.statusReason,
        iotEdge: d.iotEdge,
        deviceScope: d.deviceScope,
        modulesContent: d.modulesContent,
        twin: d.twin,
        modules: [...d.modules.values()].map(m => ({
          moduleId: m.moduleId, auth: m.auth, generationId: m.generationId, etag: m.etag, managedBy: m.managedBy, twin: m.twin
        }))
      })
    }
    return { hostname: this.hostname, policies: this.policies, sessions: this.sessions, devices }
  }

  restore (o) {
    this.policies = o.policies
    this.sessions = o.sessions || {}
    for (const s of o.devices) {
      const d = new Device(s.deviceId, s.auth)
      Object.assign(d, {
        generationId: s.generationId,
        etag: s.etag,
        status: s.status,
        statusReason: s.statusReason,
        iotEdge: s.iotEdge,
        deviceScope: s.deviceScope,
        modulesContent: s.modulesContent,
        twin: Twin.from(s.twin)
      })
      for (const ms of s.modules) {
        const m = new Module(s.deviceId, ms.moduleId, ms.auth)
        Object.assign(m, { generationId: ms.generationId, etag: ms.etag, managedBy: ms.managedBy, twin: Twin.from(ms.twin) })
        d.modules.set(ms.moduleId, m)
      }
      this.devices.set(d.deviceId, d)
    }
  }
}

module.exports = { Registry, HubError, SYSTEM_MODULES, newKey }
