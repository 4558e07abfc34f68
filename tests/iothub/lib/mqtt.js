'use strict'
// IoT Hub's device-facing MQTT endpoint on an aedes broker: CONNECT checked
// against the registry's SAS keys, one connection per identity, only IoT
// Hub's topics, telemetry stored for the service side, twins and direct
// methods answered or delivered to the one connection of an identity.

const { EventEmitter } = require('events')
const Aedes = require('aedes')
const access = require('./access')
const { parsePropertyBag, messageSize, MessageError, MAX_MESSAGE } = require('./messages')
const { TwinError } = require('./twin')
const { HubError } = require('./registry')

const TWIN_GET = '$iothub/twin/GET/'
const TWIN_REPORTED = '$iothub/twin/PATCH/properties/reported/'
const METHOD_RES = '$iothub/methods/res/'
// Topics the hub sends on; nothing a device publishes is forwarded to anyone.
const HUB_TO_DEVICE = ['$iothub/twin/res/', '$iothub/twin/PATCH/properties/desired/', '$iothub/methods/POST/']
const MAX_TIMER_MS = 2147483647

function refuse (code, message) {
  const e = new Error(message)
  e.returnCode = code
  return e
}

// "<hub>/<device>[/<module>]/?api-version=...&..." (the query may be absent).
function parseUsername (username) {
  if (typeof username !== 'string' || username.length === 0 || username.length > 1024) return null
  const q = username.indexOf('?')
  const base = (q < 0 ? username : username.slice(0, q)).replace(/\/$/, '')
  const segs = base.split('/')
  if (segs.length < 2 || segs.length > 3 || segs.some(s => s === '')) return null
  return { hub: segs[0], deviceId: segs[1], moduleId: segs[2] || null }
}

// "?$rid=1&$version=2" after a topic prefix: the raw values by name.
function topicQuery (rest) {
  const out = {}
  if (!rest.startsWith('?')) return out
  for (const part of rest.slice(1).split('&')) {
    const eq = part.indexOf('=')
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1)
  }
  return out
}

// MQTT 3.1.1 topic filter matching.
function filterMatches (filter, topic) {
  const f = filter.split('/')
  const t = topic.split('/')
  if ((f[0] === '#' || f[0] === '+') && topic.startsWith('$')) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

class DeviceEndpoint extends EventEmitter {
  constructor ({ registry, telemetry, skew, log }) {
    super()
    this.registry = registry
    this.telemetry = telemetry
    this.skew = skew
    this.log = log
    this.connections = new Map() // client id -> aedes client
    this.pendingMethods = new Map() // rid -> { clientId, resolve, timer }
    this.nextRid = 1
    this.setMaxListeners(0)
    this.aedes = new Aedes({
      maxClientsIdLength: 256,
      preConnect: (client, packet, cb) => this.preConnect(client, packet, cb),
      authenticate: (client, username, password, cb) => this.authenticate(client, username, password, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, cb),
      authorizeForward: (client, packet) => HUB_TO_DEVICE.some(p => packet.topic.startsWith(p)) ? packet : null
    })
    this.aedes.on('client', client => this.online(client))
    this.aedes.on('clientDisconnect', client => this.offline(client))
    this.aedes.on('subscribe', (subs, client) => { this.keepSession(client); this.emit('subscribed', client) })
    this.aedes.on('unsubscribe', (subs, client) => this.keepSession(client))
    // IoT Hub keeps persistent sessions across its own restarts: so does a
    // stand-in with --state (the Node SDK does not subscribe again).
    for (const [id, subs] of Object.entries(registry.sessions)) {
      this.aedes.persistence.addSubscriptions({ id }, subs, () => {})
    }
    this.aedes.on('clientError', (client, err) => { if (!err.errorCode) this.log('mqtt ' + client.id + ': ' + err.message) })
    registry.onRemove = identity => {
      delete registry.sessions[this.clientId(identity)]
      const c = this.connections.get(this.clientId(identity))
      if (c) {
        this.log('mqtt ' + c.id + ': identity deleted, closing its connection')
        c.close()
      }
    }
  }

  handle (stream) {
    this.aedes.handle(stream)
  }

  clientId (identity) {
    return identity.moduleId ? identity.deviceId + '/' + identity.moduleId : identity.deviceId
  }

  preConnect (client, packet, cb) {
    // IoT Hub grants at most QoS 1: rewrite QoS 2 subscriptions before aedes
    // answers them, so the SUBACK says 1.
    client._parser.prependListener('packet', p => {
      if (p.cmd === 'subscribe') for (const s of p.subscriptions) if (s.qos > 1) s.qos = 1
    })
    cb(null, true)
  }

  authenticate (client, username, password, cb) {
    const id = client.id || ''
    const user = parseUsername(username)
    if (!user) {
      this.log('mqtt ' + id + ': refused (4), malformed username "' + String(username).slice(0, 128) + '"')
      return cb(refuse(4, 'malformed username'), false)
    }
    const want = user.moduleId ? user.deviceId + '/' + user.moduleId : user.deviceId
    try {
      if (user.hub.toLowerCase() !== this.registry.hostname.toLowerCase()) {
        throw new HubError(401, 'IotHubUnauthorizedAccess', 'username names hub ' + user.hub + ', this is ' + this.registry.hostname)
      }
      if (id !== want) throw new HubError(401, 'IotHubUnauthorizedAccess', 'client id ' + id + ' does not match the username\'s ' + want)
      const { identity, expiry } = access.connectIdentity(this.registry, password ? password.toString() : '', this.skew, user.deviceId, user.moduleId)
      client.iothub = { identity, expiry }
      cb(null, true)
    } catch (e) {
      this.log('mqtt ' + id + ': refused (5), ' + e.message)
      cb(refuse(5, e.message), false)
    }
  }

  keepSession (client) {
    if (client.clean) return
    this.registry.sessions[client.id] = Object.entries(client.subscriptions).map(([topic, s]) => ({ topic, qos: s.qos }))
    this.registry.onChange()
  }

  online (client) {
    const { identity, expiry } = client.iothub
    this.connections.set(client.id, client)
    if (client.clean && this.registry.sessions[client.id]) {
      delete this.registry.sessions[client.id]
      this.registry.onChange()
    }
    identity.setConnected(true)
    this.log('mqtt ' + client.id + ': connected')
    // IoT Hub closes a connection when its token expires.
    const ms = (expiry + this.skew) * 1000 - Date.now()
    if (ms < MAX_TIMER_MS) {
      client.iothub.timer = setTimeout(() => {
        this.log('mqtt ' + client.id + ': SAS token expired, closing')
        client.close()
      }, Math.max(ms, 0))
    }
    this.emit('online', client)
  }

  offline (client) {
    if (client.iothub && client.iothub.timer) clearTimeout(client.iothub.timer)
    if (this.connections.get(client.id) !== client) return
    this.connections.delete(client.id)
    client.iothub.identity.setConnected(false)
    this.log('mqtt ' + client.id + ': disconnected')
  }

  // The QoS a delivery on topic gets (the highest matching subscription,
  // at most 1), or null when the client did not subscribe to it.
  grantedQos (client, topic) {
    let qos = null
    for (const [filter, sub] of Object.entries(client.subscriptions)) {
      if (filterMatches(filter, topic)) qos = Math.max(qos === null ? 0 : qos, Math.min(sub.qos, 1))
    }
    return qos
  }

  deliver (client, topic, payload) {
    const qos = this.grantedQos(client, topic)
    if (qos === null) return false
    client.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }, () => {})
    return true
  }

  authorizeSubscribe (client, sub, cb) {
    const { identity } = client.iothub
    const own = identity.moduleId
      ? ['devices/' + identity.deviceId + '/modules/' + identity.moduleId + '/#',
          'devices/' + identity.deviceId + '/modules/' + identity.moduleId + '/inputs/#']
      : ['devices/' + identity.deviceId + '/messages/devicebound/#']
    const allowed = ['$iothub/twin/res/#', '$iothub/twin/PATCH/properties/desired/#', '$iothub/methods/POST/#'].concat(own)
    if (allowed.includes(sub.topic)) return cb(null, sub)
    this.log('mqtt ' + client.id + ': subscription to ' + sub.topic.slice(0, 200) + ' refused')
    cb(null, null)
  }

  authorizePublish (client, packet, cb) {
    const { identity } = client.iothub
    const topic = packet.topic
    const fail = why => {
      this.log('mqtt ' + client.id + ': closing, ' + why)
      cb(new Error(why))
    }
    if (packet.qos === 2) return fail('QoS 2 publish to ' + topic.slice(0, 200) + ' (IoT Hub supports QoS 0 and 1)')
    if (packet.payload.length > MAX_MESSAGE) return fail('publish of ' + packet.payload.length + ' bytes is over IoT Hub\'s ' + MAX_MESSAGE + ' byte limit')
    const events = 'devices/' + identity.deviceId + (identity.moduleId ? '/modules/' + identity.moduleId : '') + '/messages/events'
    try {
      if (topic === events || topic.startsWith(events + '/')) {
        const { system, app } = parsePropertyBag(topic.slice(events.length + 1))
        const size = messageSize(packet.payload, system, app)
        if (size > MAX_MESSAGE) return fail('message of ' + size + ' bytes is over IoT Hub\'s ' + MAX_MESSAGE + ' byte limit')
        this.telemetry.add(identity, topic, packet.payload, system, app, packet.retain)
      } else if (topic.startsWith(TWIN_GET)) {
        const q = topicQuery(topic.slice(TWIN_GET.length))
        setImmediate(() => this.twinGet(client, q.$rid))
      } else if (topic.startsWith(TWIN_REPORTED)) {
        const q = topicQuery(topic.slice(TWIN_REPORTED.length))
        const body = packet.payload
        setImmediate(() => this.twinReported(client, q.$rid, body))
      } else if (topic.startsWith(METHOD_RES)) {
        const m = /^([^/]+)\/(.*)$/.exec(topic.slice(METHOD_RES.length))
        if (!m) return fail('malformed method response topic ' + topic.slice(0, 200))
        this.methodResponse(client, m[1], topicQuery(m[2]).$rid, packet.payload)
      } else {
        return fail('publish to ' + topic.slice(0, 200) + ', a topic IoT Hub does not accept from ' + client.id)
      }
    } catch (e) {
      if (e instanceof MessageError) return fail(e.message)
      return fail('internal error of the stand-in: ' + (e.stack || e))
    }
    // IoT Hub keeps no retained messages (RETAIN becomes the mqtt-retain property).
    packet.retain = false
    cb(null)
  }

  twinResponse (status, rid, extra) {
    return '$iothub/twin/res/' + status + '/?$rid=' + (rid === undefined ? '' : rid) + (extra || '')
  }

  twinGet (client, rid) {
    if (client.closed) return
    const twin = client.iothub.identity.twin
    if (rid === undefined) return this.deliver(client, this.twinResponse(400), '')
    this.deliver(client, this.twinResponse(200, rid), JSON.stringify({ desired: twin.desired.device(), reported: twin.reported.device() }))
  }

  twinReported (client, rid, body) {
    if (client.closed) return
    if (rid === undefined) return this.deliver(client, this.twinResponse(400), '')
    let patch
    try {
      patch = JSON.parse(body.toString('utf8'))
    } catch (e) {
      this.log('mqtt ' + client.id + ': reported patch is not JSON')
      return this.deliver(client, this.twinResponse(400, rid), '')
    }
    let version
    try {
      version = client.iothub.identity.twin.patchReported(patch)
    } catch (e) {
      if (!(e instanceof TwinError)) throw e
      this.log('mqtt ' + client.id + ': reported patch refused: ' + e.message)
      return this.deliver(client, this.twinResponse(400, rid), '')
    }
    this.registry.onChange()
    this.deliver(client, this.twinResponse(204, rid, '&$version=' + version), '')
  }

  // A desired patch from the service, pushed to the identity's connection.
  pushDesired (identity, patch) {
    const client = this.connections.get(this.clientId(identity))
    if (!client) return false
    const v = identity.twin.desired.version
    const body = Object.assign({}, patch, { $version: v })
    return this.deliver(client, '$iothub/twin/PATCH/properties/desired/?$version=' + v, JSON.stringify(body))
  }

  methodReady (identity) {
    const client = this.connections.get(this.clientId(identity))
    if (client && this.grantedQos(client, '$iothub/methods/POST/m/?$rid=1') !== null) return client
    return null
  }

  // Resolves with { status, payload }, or rejects with 404 (not connected
  // within connectTimeout) or 504 (no answer within responseTimeout).
  invokeMethod (identity, name, payload, responseTimeout, connectTimeout) {
    return new Promise((resolve, reject) => {
      const start = Date.now()
      const attempt = () => {
        const client = this.methodReady(identity)
        if (!client) {
          if (Date.now() - start >= connectTimeout * 1000) {
            return reject(new HubError(404, 'DeviceNotOnline', JSON.stringify({
              errorCode: 404103, message: 'Timed out waiting for device to connect.', info: { timeout: connectTimeout }
            })))
          }
          const retry = () => { this.off('online', retry); this.off('subscribed', retry); clearTimeout(t); attempt() }
          const t = setTimeout(retry, Math.max(0, connectTimeout * 1000 - (Date.now() - start)))
          this.on('online', retry)
          this.on('subscribed', retry)
          return
        }
        const rid = (this.nextRid++).toString(16)
        const timer = setTimeout(() => {
          this.pendingMethods.delete(rid)
          reject(new HubError(504, 'GatewayTimeout', JSON.stringify({
            errorCode: 504101, message: 'Timed out waiting for the response from device.', info: { timeout: responseTimeout }
          })))
        }, responseTimeout * 1000)
        this.pendingMethods.set(rid, { clientId: client.id, resolve, timer })
        const body = payload === undefined ? '' : JSON.stringify(payload)
        this.deliver(client, '$iothub/methods/POST/' + name + '/?$rid=' + rid, body)
      }
      attempt()
    })
  }

  methodResponse (client, status, rid, body) {
    const p = this.pendingMethods.get(rid)
    if (!p || p.clientId !== client.id || !/^-?[0-9]{1,9}$/.test(status)) {
      this.log('mqtt ' + client.id + ': method response for unknown request ' + String(rid).slice(0, 40) + ' or bad status ' + status.slice(0, 20) + ', ignored')
      return
    }
    this.pendingMethods.delete(rid)
    clearTimeout(p.timer)
    let payload = null
    const text = body.toString('utf8')
    if (text.trim() !== '') {
      try { payload = JSON.parse(text) } catch (e) { payload = text }
    }
    p.resolve({ status: Number(status), payload })
  }

  clients () {
    return [...this.connections.values()].map(c => ({
      clientId: c.id,
      deviceId: c.iothub.identity.deviceId,
      moduleId: c.iothub.identity.moduleId,
      clean: c.clean,
      subscriptions: Object.keys(c.subscriptions),
      tokenExpiry: c.iothub.expiry
    }))
  }

  disconnect (clientId) {
    const c = this.connections.get(clientId)
    if (!c) return false
    c.close()
    return true
  }

  close (done) {
    for (const p of this.pendingMethods.values()) clearTimeout(p.timer)
    this.aedes.close(done)
  }
}

module.exports = { DeviceEndpoint, filterMatches }
