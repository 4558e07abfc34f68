'use strict'
// Device-to-cloud messages: the property bag of the topic decoded into IoT
// Hub's system and application properties, the 256 KiB limit, and the store
// the service side reads them from (optionally mirrored to a JSON-lines file,
// which is read back at start so a restarted stand-in keeps what it received).

const fs = require('fs')

const MAX_MESSAGE = 256 * 1024

// Property bag keys IoT Hub reads as system properties.
const SYSTEM_KEYS = {
  '$.mid': 'messageId',
  '$.cid': 'correlationId',
  '$.uid': 'userId',
  '$.to': 'to',
  '$.exp': 'expiryTimeUtc',
  '$.ct': 'contentType',
  '$.ce': 'contentEncoding',
  '$.on': 'outputName',
  '$.ctime': 'creationTimeUtc',
  '$.schema': 'messageSchema',
  '$.ifid': 'interfaceId',
  '$.sub': 'componentName'
}
// Set by the hub from the connection, whatever the device puts there.
const HUB_KEYS = new Set(['$.cdid', '$.cmid'])

class MessageError extends Error {}

// "k1=v1&k2&k3=" (url-encoded), with an optional leading "?" and trailing "/".
function parsePropertyBag (bag) {
  const system = {}
  const app = {}
  bag = bag.replace(/\/$/, '').replace(/^\?/, '')
  for (const part of bag.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    let k, v
    try {
      k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq))
      v = eq < 0 ? null : decodeURIComponent(part.slice(eq + 1))
    } catch (e) {
      throw new MessageError('bad %-escape in property bag part "' + part.slice(0, 64) + '"')
    }
    if (k === '') throw new MessageError('empty property name in property bag')
    if (HUB_KEYS.has(k)) continue
    if (SYSTEM_KEYS[k]) system[SYSTEM_KEYS[k]] = v
    else app[k] = v
  }
  return { system, app }
}

// IoT Hub's message size: body plus property names and values.
function messageSize (body, system, app) {
  let n = body.length
  for (const v of Object.values(system)) n += v === null ? 0 : Buffer.byteLength(v)
  for (const [k, v] of Object.entries(app)) n += Buffer.byteLength(k) + (v === null ? 0 : Buffer.byteLength(v))
  return n
}

class TelemetryStore {
  constructor (maxMessages, logFile) {
    this.max = maxMessages
    this.messages = []
    this.seq = 0
    this.dropped = 0
    this.log = null
    if (logFile) {
      if (fs.existsSync(logFile)) {
        for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
          if (line.trim() === '') continue
          try { this.keep(JSON.parse(line)) } catch (e) { /* a line torn by a kill: skip it */ }
        }
      }
      this.log = fs.createWriteStream(logFile, { flags: 'a' })
    }
  }

  keep (m) {
    this.seq = Math.max(this.seq, m.seq)
    this.messages.push(m)
    if (this.messages.length > this.max) {
      this.messages.shift()
      this.dropped++
    }
  }

  add (identity, topic, payload, system, app, retain) {
    if (retain) app['mqtt-retain'] = 'true'
    system.connectionDeviceId = identity.deviceId
    if (identity.moduleId) system.connectionModuleId = identity.moduleId
    const m = {
      seq: this.seq + 1,
      deviceId: identity.deviceId,
      moduleId: identity.moduleId,
      topic,
      enqueuedTimeUtc: new Date().toISOString(),
      systemProperties: system,
      properties: app,
      size: payload.length,
      body: payload.toString('base64')
    }
    this.keep(m)
    if (this.log) this.log.write(JSON.stringify(m) + '\n')
    return m
  }

  query ({ deviceId, moduleId, after, limit }) {
    const out = []
    for (const m of this.messages) {
      if (m.seq <= after) continue
      if (deviceId !== undefined && m.deviceId !== deviceId) continue
      if (moduleId !== undefined && (m.moduleId || '') !== moduleId) continue
      out.push(m)
      if (out.length >= limit) break
    }
    return out
  }

  clear () {
    this.messages = []
    this.dropped = 0
    if (this.log) fs.truncateSync(this.log.path)
  }

  close (done) {
    if (this.log) this.log.end(done)
    else done()
  }
}

module.exports = { parsePropertyBag, messageSize, TelemetryStore, MessageError, MAX_MESSAGE }
