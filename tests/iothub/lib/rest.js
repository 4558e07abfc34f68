'use strict'
// IoT Hub's REST API over HTTPS: the identity registry (service policies, and
// an edge device's own SAS token for its modules), twins, direct methods,
// applyConfigurationContent; plus /_standin/ routes that only this stand-in
// has (received telemetry, connected clients), for tests.

const crypto = require('crypto')
const access = require('./access')
const { HubError } = require('./registry')
const { TwinError, isObject } = require('./twin')

const MAX_BODY = 1024 * 1024
const BODY_TIMEOUT_MS = 10000

function send (res, status, body, headers) {
  const h = Object.assign({}, headers || {})
  let data = ''
  if (body !== undefined) {
    data = JSON.stringify(body)
    h['Content-Type'] = 'application/json; charset=utf-8'
  }
  h['Content-Length'] = Buffer.byteLength(data)
  res.writeHead(status, h)
  res.end(data)
}

// IoT Hub's error body: {"Message":"ErrorCode:<code>;<text>","ExceptionMessage":"Tracking ID:..."}.
function sendError (res, e) {
  send(res, e.status, {
    Message: 'ErrorCode:' + e.code + ';' + e.message,
    ExceptionMessage: 'Tracking ID:' + crypto.randomBytes(16).toString('hex') + '-TimeStamp:' + new Date().toISOString()
  }, { 'iothub-errorcode': e.code })
}

function readBody (req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let n = 0
    const timer = setTimeout(() => { reject(new HubError(408, 'RequestTimeout', 'request body did not arrive in time')); req.destroy() }, BODY_TIMEOUT_MS)
    req.on('data', c => {
      n += c.length
      if (n > MAX_BODY) {
        clearTimeout(timer)
        reject(new HubError(413, 'RequestEntityTooLarge', 'request body over ' + MAX_BODY + ' bytes'))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)) })
    req.on('error', e => { clearTimeout(timer); reject(e) })
  })
}

function parseJson (buf) {
  if (buf.length === 0) throw new HubError(400, 'ArgumentInvalid', 'request body is empty')
  try {
    return JSON.parse(buf.toString('utf8'))
  } catch (e) {
    throw new HubError(400, 'ArgumentInvalid', 'request body is not valid JSON: ' + e.message)
  }
}

function badRequest (message) {
  return new HubError(400, 'ArgumentInvalid', message)
}

function quoted (etag) {
  return { ETag: '"' + etag + '"' }
}

function twinJSON (identity, device) {
  const t = identity.twin
  const out = { deviceId: identity.deviceId }
  if (identity.moduleId) out.moduleId = identity.moduleId
  Object.assign(out, {
    etag: t.etag,
    deviceEtag: identity.etag,
    status: device.status,
    statusUpdateTime: device.statusUpdatedTime,
    connectionState: identity.connected ? 'Connected' : 'Disconnected',
    lastActivityTime: identity.lastActivityTime,
    cloudToDeviceMessageCount: 0,
    authenticationType: identity.auth.type,
    x509Thumbprint: { primaryThumbprint: identity.auth.primaryThumbprint, secondaryThumbprint: identity.auth.secondaryThumbprint },
    modelId: '',
    version: t.version,
    tags: t.tags,
    properties: { desired: t.desired.service(), reported: t.reported.service() }
  })
  if (!identity.moduleId) out.capabilities = { iotEdge: device.iotEdge }
  return out
}

function intIn (v, dflt, lo, hi, name) {
  if (v === undefined || v === null) return dflt
  if (!Number.isInteger(v) || v < lo || v > hi) throw badRequest(name + ' must be an integer from ' + lo + ' to ' + hi)
  return v
}

class RestApi {
  constructor ({ registry, endpoint, telemetry, skew, log }) {
    this.registry = registry
    this.endpoint = endpoint
    this.telemetry = telemetry
    this.skew = skew
    this.log = log
  }

  handler () {
    return (req, res) => {
      this.route(req, res).catch(e => {
        if (e instanceof HubError) return sendError(res, e)
        this.log('https ' + req.method + ' ' + req.url.slice(0, 200) + ': ' + (e.stack || e))
        sendError(res, new HubError(500, 'ServerError', 'internal error of the stand-in: ' + e.message))
      })
    }
  }

  principal (req, right, path, deviceAllowed) {
    return access.restPrincipal(this.registry, req.headers.authorization || '', this.skew, right,
      this.registry.hostname + path, deviceAllowed)
  }

  async route (req, res) {
    const q = req.url.indexOf('?')
    const url = {
      pathname: q < 0 ? req.url : req.url.slice(0, q),
      searchParams: new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1))
    }
    if (!url.pathname.startsWith('/') || url.pathname.length > 2048) throw badRequest('bad request path')
    let segs
    try {
      segs = url.pathname.split('/').slice(1).map(decodeURIComponent)
    } catch (e) {
      throw badRequest('bad %-escape in the path')
    }
    if (segs[segs.length - 1] === '') segs.pop()
    const method = req.method
    const body = ['PUT', 'PATCH', 'POST'].includes(method) ? await readBody(req) : Buffer.alloc(0)
    if (segs[0] === '_standin') return this.standin(req, res, segs.slice(1), url, body)
    if (!url.searchParams.get('api-version')) {
      throw new HubError(400, 'InvalidProtocolVersion', 'the api-version query parameter is required')
    }
    const ifMatch = req.headers['if-match']
    const r = this.registry
    const [top, d, sub, m, leaf] = segs
    const notAllowed = () => { throw new HubError(405, 'MethodNotAllowed', method + ' is not supported on ' + url.pathname) }

    if (top === 'devices' && segs.length === 1) {
      if (method !== 'GET') notAllowed()
      this.principal(req, 'RegistryRead', '/devices', false)
      return send(res, 200, [...r.devices.values()].map(x => x.toJSON()))
    }
    if (top === 'devices' && segs.length === 2) {
      const path = '/devices/' + d
      if (method === 'PUT') {
        this.principal(req, 'RegistryWrite', path, false)
        const dev = r.putDevice(d, parseJson(body), ifMatch)
        return send(res, 200, dev.toJSON(), quoted(dev.etag))
      }
      if (method === 'GET') {
        this.principal(req, 'RegistryRead', path, false)
        const dev = r.device(d)
        return send(res, 200, dev.toJSON(), quoted(dev.etag))
      }
      if (method === 'DELETE') {
        this.principal(req, 'RegistryWrite', path, false)
        r.deleteDevice(d, ifMatch)
        return send(res, 204)
      }
      notAllowed()
    }
    if (top === 'devices' && sub === 'modules' && segs.length <= 4) {
      const path = '/devices/' + d + '/modules' + (m === undefined ? '' : '/' + m)
      // An edge device manages its own modules with its own SAS token.
      const who = this.principal(req, method === 'GET' ? 'RegistryRead' : 'RegistryWrite', path, true)
      if (who.device && !who.device.iotEdge) {
        throw new HubError(401, 'IotHubUnauthorizedAccess', 'Unauthorized: device ' + d + ' is not an IoT Edge device')
      }
      if (m === undefined) {
        if (method !== 'GET') notAllowed()
        return send(res, 200, [...r.device(d).modules.values()].map(x => x.toJSON()))
      }
      if (method === 'PUT') {
        const mod = r.putModule(d, m, parseJson(body), ifMatch)
        this.log('https: module identity ' + d + '/' + m + (ifMatch === undefined ? ' created' : ' updated'))
        return send(res, 200, mod.toJSON(), quoted(mod.etag))
      }
      if (method === 'GET') {
        const mod = r.module(d, m)
        return send(res, 200, mod.toJSON(), quoted(mod.etag))
      }
      if (method === 'DELETE') {
        r.deleteModule(d, m, ifMatch)
        this.log('https: module identity ' + d + '/' + m + ' deleted')
        return send(res, 204)
      }
      notAllowed()
    }
    if (top === 'devices' && sub === 'applyConfigurationContent' && segs.length === 3) {
      if (method !== 'POST') notAllowed()
      this.principal(req, 'RegistryWrite', '/devices/' + d, false)
      this.applyConfiguration(r.device(d), parseJson(body))
      return send(res, 204)
    }
    if (top === 'twins' && (segs.length === 2 || (sub === 'modules' && segs.length === 4))) {
      this.principal(req, 'ServiceConnect', '/' + segs.join('/'), false)
      const identity = m === undefined ? r.device(d) : r.twinIdentity(d, m)
      if (method === 'GET') return send(res, 200, twinJSON(identity, r.device(d)), quoted(identity.twin.etag))
      if (method === 'PATCH') {
        this.patchTwin(identity, parseJson(body), ifMatch)
        return send(res, 200, twinJSON(identity, r.device(d)), quoted(identity.twin.etag))
      }
      notAllowed()
    }
    if (top === 'twins' && ((segs.length === 3 && sub === 'methods') || (sub === 'modules' && leaf === 'methods' && segs.length === 5))) {
      if (method !== 'POST') notAllowed()
      this.principal(req, 'ServiceConnect', '/' + segs.join('/'), false)
      const identity = m === undefined ? r.device(d) : r.module(d, m)
      const result = await this.invoke(identity, parseJson(body))
      return send(res, 200, result)
    }
    throw new HubError(404, 'NotFound', 'no such resource: ' + method + ' ' + url.pathname)
  }

  patchTwin (identity, body, ifMatch, silent) {
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch.replace(/^"(.*)"$/, '$1') !== identity.twin.etag) {
      throw new HubError(412, 'PreconditionFailed', 'Precondition failed: twin etag does not match')
    }
    let desired
    try {
      desired = identity.twin.patchService(body)
    } catch (e) {
      if (e instanceof TwinError) throw badRequest(e.message)
      throw e
    }
    this.registry.onChange()
    if (desired && !silent) this.endpoint.pushDesired(identity, desired)
  }

  // What `az iot edge set-modules` does: each module's desired properties
  // become the content's, $edgeAgent and $edgeHub included; modules without
  // an identity yet get them when their identity is created.
  applyConfiguration (device, body) {
    if (!device.iotEdge) throw badRequest('Not an Azure IoT Edge device: ' + device.deviceId)
    if (!isObject(body) || !isObject(body.modulesContent)) throw new HubError(400, 'InvalidConfigurationContent', 'body has no "modulesContent" object')
    const mc = body.modulesContent
    if (!isObject(mc.$edgeAgent)) throw new HubError(400, 'InvalidConfigurationContent', 'modulesContent has no $edgeAgent')
    const desired = {}
    for (const [name, content] of Object.entries(mc)) {
      if (!isObject(content) || Object.keys(content).some(k => k !== 'properties.desired') || !isObject(content['properties.desired'])) {
        throw new HubError(400, 'InvalidConfigurationContent', 'modulesContent.' + name + ' must hold one "properties.desired" object')
      }
      desired[name] = content['properties.desired']
    }
    const pushes = []
    try {
      for (const [name, doc] of Object.entries(desired)) {
        const identity = device.modules.get(name)
        if (identity) pushes.push([identity, identity.twin.replaceDesired(doc)])
      }
      device.modulesContent = desired
    } catch (e) {
      if (e instanceof TwinError) throw new HubError(400, 'InvalidConfigurationContent', e.message)
      throw e
    }
    this.registry.onChange()
    this.log('https: deployment applied to ' + device.deviceId + ' (' + Object.keys(desired).join(', ') + ')')
    for (const [identity, patch] of pushes) this.endpoint.pushDesired(identity, patch)
  }

  async invoke (identity, body) {
    if (!isObject(body)) throw badRequest('method invocation body is not a JSON object')
    const name = body.methodName
    if (typeof name !== 'string' || !/^[^/#+?\s]{1,100}$/.test(name)) throw badRequest('methodName is missing or not a valid method name')
    const responseTimeout = intIn(body.responseTimeoutInSeconds, 30, 5, 300, 'responseTimeoutInSeconds')
    const connectTimeout = intIn(body.connectTimeoutInSeconds, 0, 0, 300, 'connectTimeoutInSeconds')
    return this.endpoint.invokeMethod(identity, name, body.payload, responseTimeout, connectTimeout)
  }

  // Test-only routes, authenticated like the service API.
  async standin (req, res, segs, url, body) {
    this.principal(req, 'ServiceConnect', '', false)
    const method = req.method
    if (segs[0] === 'telemetry' && segs.length === 1) {
      if (method === 'DELETE') {
        this.telemetry.clear()
        return send(res, 204)
      }
      if (method === 'GET') {
        const q = url.searchParams
        const num = (n, d) => { const v = q.get(n); return v === null ? d : Math.max(0, parseInt(v, 10) || 0) }
        const messages = this.telemetry.query({
          deviceId: q.get('deviceId') === null ? undefined : q.get('deviceId'),
          moduleId: q.get('moduleId') === null ? undefined : q.get('moduleId'),
          after: num('after', 0),
          limit: Math.min(num('limit', 1000), 10000) || 1000
        })
        return send(res, 200, { messages, last: this.telemetry.seq, dropped: this.telemetry.dropped })
      }
    }
    if (segs[0] === 'clients' && segs.length === 1 && method === 'GET') return send(res, 200, this.endpoint.clients())
    if (segs[0] === 'clients' && segs.length === 2 && method === 'DELETE') {
      if (!this.endpoint.disconnect(segs[1])) throw new HubError(404, 'NotFound', 'no connected client ' + segs[1])
      return send(res, 204)
    }
    // A desired patch that is stored but not pushed: the device sees a $version gap.
    if (segs[0] === 'twins' && (segs.length === 2 || (segs[2] === 'modules' && segs.length === 4)) && method === 'PATCH') {
      const identity = segs.length === 2 ? this.registry.device(segs[1]) : this.registry.twinIdentity(segs[1], segs[3])
      this.patchTwin(identity, parseJson(body), undefined, true)
      return send(res, 200, twinJSON(identity, this.registry.device(segs[1])))
    }
    throw new HubError(404, 'NotFound', 'no such stand-in resource: ' + method + ' ' + url.pathname)
  }
}

module.exports = { RestApi }
