#!/usr/bin/env node
'use strict'
// The real Azure IoT Node SDK (azure-iot-device + azure-iot-device-mqtt) as a
// device or module of the stand-in, for the test that checks the stand-in
// speaks IoT Hub's dialect. Usage: node sdk_client.js <connection string> <CA file>
// It sends one telemetry message, reads its twin, reports properties, then
// prints a JSON line for each desired patch and answers method "echo" with
// {"echo": <payload>} until stdin closes. Every step is a JSON line on stdout.

const fs = require('fs')
const { Client, ModuleClient, Message } = require('azure-iot-device')
const { Mqtt } = require('azure-iot-device-mqtt')

function say (o) {
  process.stdout.write(JSON.stringify(o) + '\n')
}

async function main () {
  const [cs, caFile] = process.argv.slice(2)
  if (!cs || !caFile) throw new Error('usage: node sdk_client.js <connection string> <CA file>')
  const isModule = /;ModuleId=/.test(cs)
  const client = isModule ? ModuleClient.fromConnectionString(cs, Mqtt) : Client.fromConnectionString(cs, Mqtt)
  await client.setOptions({ ca: fs.readFileSync(caFile, 'utf8') })
  client.on('error', e => say({ event: 'error', message: e.message }))
  await client.open()
  say({ event: 'connected' })

  const msg = new Message(JSON.stringify({ temperature: 21.5 }))
  msg.messageId = 'sdk-msg-1'
  msg.correlationId = 'sdk-corr-1'
  msg.contentType = 'application/json'
  msg.contentEncoding = 'utf-8'
  msg.properties.add('source', 'node-sdk')
  if (isModule) await client.sendOutputEvent('sdkout', msg)
  else await client.sendEvent(msg)
  say({ event: 'sent' })

  const twin = await client.getTwin()
  say({ event: 'twin', desired: twin.properties.desired, reported: twin.properties.reported })
  await new Promise((resolve, reject) => {
    twin.properties.reported.update({ sdk: { reportedBy: 'node', ok: true } }, err => err ? reject(err) : resolve())
  })
  say({ event: 'reported' })

  twin.on('properties.desired', delta => say({ event: 'desired', delta }))
  const onMethod = (isModule ? client.onMethod : client.onDeviceMethod).bind(client)
  onMethod('echo', (req, res) => {
    say({ event: 'method', name: req.methodName, payload: req.payload })
    res.send(200, { echo: req.payload }, err => { if (err) say({ event: 'error', message: err.message }) })
  })
  say({ event: 'ready' })
  process.stdin.resume()
  process.stdin.on('end', () => client.close(() => process.exit(0)))
}

main().catch(e => {
  say({ event: 'failed', message: e.message })
  process.exit(1)
})
