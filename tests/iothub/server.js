#!/usr/bin/env node
'use strict'
// A local stand-in for Azure IoT Hub: MQTT (plain and TLS) on an aedes broker
// and IoT Hub's REST API over HTTPS, on loopback. See README.md beside this file.

const fs = require('fs')
const os = require('os')
const path = require('path')
const net = require('net')
const tls = require('tls')
const https = require('https')
const { execFileSync } = require('child_process')
const { Registry, newKey } = require('./lib/registry')
const { TelemetryStore } = require('./lib/messages')
const { DeviceEndpoint } = require('./lib/mqtt')
const { RestApi } = require('./lib/rest')
const sas = require('./lib/sas')

const USAGE = `usage: node server.js [options]

A local stand-in for Azure IoT Hub (MQTT device endpoint, REST API) for tests.

  --hostname NAME        IoT Hub host name in tokens and usernames (standin.azure-devices.net)
  --host ADDR            address to listen on (127.0.0.1)
  --mqtt-port N          plain MQTT port, 0 = any free port, -1 = none (0)
  --mqtts-port N         MQTT over TLS port, 0 = any free port (0)
  --https-port N         REST API port, 0 = any free port (0)
  --certs DIR            CA and server certificate: reused from DIR, made with
                         openssl when missing (a new temporary directory)
  --san NAME             extra subjectAltName of the server certificate
                         (DNS:name or IP:addr), repeatable
  --service-key KEY      primary key (base64) of the iothubowner policy (random)
  --state FILE           keep identities and twins in FILE across restarts
  --telemetry-log FILE   append received messages to FILE (JSON lines) and
                         read them back at start
  --max-messages N       telemetry kept in memory, oldest dropped first (200000)
  --sas-skew SECONDS     clock skew allowed past a token's expiry (300, as IoT Hub)
  --info FILE            also write the ready line to FILE
  --quiet                log nothing but errors
  --help                 this text

When everything listens, one JSON line goes to stdout:
  {"ready":true,"hostname":...,"host":...,"mqttPort":...,"mqttsPort":...,
   "httpsPort":...,"caFile":...,"serviceKey":...,"serviceConnectionString":...}
SIGTERM or SIGINT stops it.
`

function parseArgs (argv) {
  const o = {
    hostname: 'standin.azure-devices.net',
    host: '127.0.0.1',
    mqttPort: 0,
    mqttsPort: 0,
    httpsPort: 0,
    certs: null,
    san: [],
    serviceKey: null,
    state: null,
    telemetryLog: null,
    maxMessages: 200000,
    sasSkew: 300,
    info: null,
    quiet: false
  }
  const num = (name, v) => {
    if (!/^-?[0-9]+$/.test(v || '')) throw new Error(name + ' needs a number, not "' + v + '"')
    return Number(v)
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(a + ' needs a value')
      return argv[++i]
    }
    switch (a) {
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0); break
      case '--hostname': o.hostname = val(); break
      case '--host': o.host = val(); break
      case '--mqtt-port': o.mqttPort = num(a, val()); break
      case '--mqtts-port': o.mqttsPort = num(a, val()); break
      case '--https-port': o.httpsPort = num(a, val()); break
      case '--certs': o.certs = val(); break
      case '--san': o.san.push(val()); break
      case '--service-key': o.serviceKey = val(); break
      case '--state': o.state = val(); break
      case '--telemetry-log': o.telemetryLog = val(); break
      case '--max-messages': o.maxMessages = num(a, val()); break
      case '--sas-skew': o.sasSkew = num(a, val()); break
      case '--info': o.info = val(); break
      case '--quiet': o.quiet = true; break
      default: throw new Error('unknown option ' + a)
    }
  }
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(o.hostname)) throw new Error('--hostname "' + o.hostname + '" is not a host name')
  for (const s of o.san) if (!/^(DNS|IP):[A-Za-z0-9.:*-]+$/.test(s)) throw new Error('--san "' + s + '" is not DNS:name or IP:addr')
  return o
}

function openssl (args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

// A CA of this stand-in and a server certificate it signs, for the host name,
// localhost and the loopback addresses (plus --san). The CA is kept while the
// directory lives, so clients keep trusting a restarted stand-in.
function ensureCerts (dir, hostname, extraSan) {
  fs.mkdirSync(dir, { recursive: true })
  const f = n => path.join(dir, n)
  if (!fs.existsSync(f('ca.pem')) || !fs.existsSync(f('ca.key'))) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '3650', '-subj', '/CN=IoT Hub stand-in test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    fs.rmSync(f('server.pem'), { force: true })
  }
  const san = ['DNS:' + hostname, 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1'].concat(extraSan).join(',')
  const sanFile = f('server.san')
  if (!fs.existsSync(f('server.pem')) || !fs.existsSync(f('server.key')) || !fs.existsSync(sanFile) ||
      fs.readFileSync(sanFile, 'utf8') !== san) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f('server.key'), '-out', f('server.pem'), '-days', '825', '-subj', '/CN=' + hostname,
      '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-addext', 'subjectAltName=' + san, '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature,keyAgreement', '-addext', 'extendedKeyUsage=serverAuth'])
    fs.writeFileSync(sanFile, san)
  }
  return { ca: f('ca.pem'), cert: fs.readFileSync(f('server.pem')), key: fs.readFileSync(f('server.key')) }
}

function listen (server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve(server.address().port))
  })
}

function stateWriter (file, registry) {
  let timer = null
  const write = () => {
    timer = null
    const tmp = file + '.tmp'
    fs.writeFileSync(tmp, JSON.stringify(registry))
    fs.renameSync(tmp, file)
  }
  return {
    changed () { if (!timer) timer = setTimeout(write, 50) },
    flush () { if (timer) { clearTimeout(timer); write() } }
  }
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (e) {
    process.stderr.write('iothub-standin: ' + e.message + '\n' + USAGE)
    process.exit(2)
  }
  // Signals are handled from the start, so a stop right after the ready line
  // still ends cleanly.
  const servers = []
  let stopping = false
  let endpoint = null
  let telemetry = null
  let state = { changed () {}, flush () {} }
  const stop = () => {
    if (stopping) return
    stopping = true
    state.flush()
    for (const s of servers) s.close()
    const done = () => telemetry ? telemetry.close(() => process.exit(0)) : process.exit(0)
    if (endpoint) endpoint.close(done)
    else done()
    setTimeout(() => process.exit(0), 2000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  const log = opts.quiet ? () => {} : msg => process.stderr.write('iothub-standin: ' + msg + '\n')
  const certDir = opts.certs || fs.mkdtempSync(path.join(os.tmpdir(), 'iothub-standin-'))
  const certs = ensureCerts(certDir, opts.hostname, opts.san)

  const registry = new Registry(opts.hostname)
  if (opts.state && fs.existsSync(opts.state)) {
    const saved = JSON.parse(fs.readFileSync(opts.state, 'utf8'))
    if (saved.hostname !== opts.hostname) throw new Error(opts.state + ' belongs to hub ' + saved.hostname)
    registry.restore(saved)
  }
  if (opts.serviceKey) {
    try {
      if (Buffer.from(opts.serviceKey, 'base64').length < 16) throw new Error('short')
    } catch (e) {
      throw new Error('--service-key must be base64 of at least 16 bytes')
    }
    registry.policies.iothubowner.keys = [opts.serviceKey, registry.policies.iothubowner.keys[1] || newKey()]
  }
  if (opts.state) state = stateWriter(opts.state, registry)
  registry.onChange = () => state.changed()
  state.changed()

  telemetry = new TelemetryStore(opts.maxMessages, opts.telemetryLog)
  endpoint = new DeviceEndpoint({ registry, telemetry, skew: opts.sasSkew, log })
  const rest = new RestApi({ registry, endpoint, telemetry, skew: opts.sasSkew, log })

  const info = { ready: true, hostname: opts.hostname, host: opts.host }
  if (opts.mqttPort >= 0) {
    const s = net.createServer(sock => endpoint.handle(sock))
    servers.push(s)
    info.mqttPort = await listen(s, opts.mqttPort, opts.host)
  }
  const mqtts = tls.createServer({ cert: certs.cert, key: certs.key, minVersion: 'TLSv1.2' }, sock => endpoint.handle(sock))
  servers.push(mqtts)
  info.mqttsPort = await listen(mqtts, opts.mqttsPort, opts.host)
  const api = https.createServer({ cert: certs.cert, key: certs.key, minVersion: 'TLSv1.2' }, rest.handler())
  api.headersTimeout = 10000
  api.requestTimeout = 30000 + 300000 // a method call may wait its full timeout
  servers.push(api)
  info.httpsPort = await listen(api, opts.httpsPort, opts.host)
  const owner = registry.policies.iothubowner.keys[0]
  Object.assign(info, {
    caFile: path.resolve(certs.ca),
    serviceKey: owner,
    serviceConnectionString: 'HostName=' + opts.hostname + ';SharedAccessKeyName=iothubowner;SharedAccessKey=' + owner,
    serviceToken: sas.create(opts.hostname, owner, Math.floor(Date.now() / 1000) + 86400, 'iothubowner')
  })
  const line = JSON.stringify(info) + '\n'
  if (opts.info) {
    fs.writeFileSync(opts.info + '.tmp', line)
    fs.renameSync(opts.info + '.tmp', opts.info)
  }
  process.stdout.write(line)
  log('listening on ' + opts.host + ': mqtt ' + (info.mqttPort === undefined ? '-' : info.mqttPort) +
    ', mqtts ' + info.mqttsPort + ', https ' + info.httpsPort + ' as ' + opts.hostname)

}

main().catch(e => {
  process.stderr.write('iothub-standin: ' + e.message + '\n')
  process.exit(1)
})
