// An IoT Edge module written against the Azure IoT Node SDK, as a user
// writes one: ModuleClient.fromEnvironment(Mqtt), nothing berth-specific.
// Everything it sees is logged, one line each, for the tests to read.
//   outputs: with SEND_TO set, a message to that output every SEND_MS ms
//            (application property seq, JSON body {"seq": n})
//   inputs:  every message is logged with its properties
//   twin:    the desired properties at start and every patch are logged,
//            and reported back as {"seen": <desired $version>}
//   methods: echo answers {"echo": payload, "from": <module>}; call invokes
//            payload.method on module payload.target through the gateway
//            (module-to-module) and answers with what came back
//   TOKEN_SECS: tokens valid that long, renewed at half their life (the SDK's
//            setOptions replaces the transport's options, so the trust
//            bundle goes with it: read here from the workload API)
'use strict';
const { ModuleClient, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const http = require('http');

const me = process.env.IOTEDGE_MODULEID;
function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

ModuleClient.fromEnvironment(Mqtt, (err, client) => {
  if (err) {
    log('fromEnvironment failed:', err.message);
    process.exit(2);
  }
  client.on('error', (e) => log('client error:', e.message));
  client.on('disconnect', () => log('disconnected'));
  client.on('inputMessage', (input, msg) => {
    log(`input ${input} body ${msg.getBytes().toString()} props ` +
        JSON.stringify(msg.properties.propertyList));
    client.complete(msg, () => {});
  });
  client.onMethod('echo', (req, res) => {
    log(`method echo ${JSON.stringify(req.payload)}`);
    res.send(200, { echo: req.payload, from: me }, () => {});
  });
  client.onMethod('call', (req, res) => {
    const p = req.payload;
    log(`method call ${JSON.stringify(p)}`);
    client.invokeMethod(process.env.IOTEDGE_DEVICEID, p.target,
      { methodName: p.method, payload: p.payload, responseTimeoutInSeconds: 10,
        connectTimeoutInSeconds: 5 },
      (e, result) => {
        if (e) {
          log(`module-to-module call failed: ${e.message}`);
          res.send(502, { error: e.message }, () => {});
        } else {
          log(`module-to-module call answered ${JSON.stringify(result)}`);
          res.send(200, { result }, () => {});
        }
      });
  });
  const secs = parseInt(process.env.TOKEN_SECS || '0', 10);
  if (secs) {
    trustBundle((ca) => {
      client.setOptions({ ca, tokenRenewal: { tokenValidTimeInSeconds: secs,
                                              tokenRenewalMarginInSeconds: Math.floor(secs / 2) } },
                        () => start(client));
    });
  } else {
    start(client);
  }
});

function trustBundle(done) {
  const socketPath = process.env.IOTEDGE_WORKLOADURI.replace('unix://', '');
  http.get({ socketPath, path: '/trust-bundle?api-version=2019-01-30' }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => done(JSON.parse(body).certificate));
  });
}

function start(client) {
  client.open((e) => {
    if (e) {
      log('open failed:', e.message);
      process.exit(3);
    }
    log('connected');
    client.getTwin((te, twin) => {
      if (te) {
        log('twin failed:', te.message);
        return;
      }
      log(`twin desired ${JSON.stringify(twin.properties.desired)}`);
      twin.on('properties.desired', (patch) => {
        log(`desired patch ${JSON.stringify(patch)}`);
        twin.properties.reported.update({ seen: patch.$version, module: me }, (re) => {
          log(`reported ${re ? 'failed: ' + re.message : 'ok'}`);
        });
      });
    });
    if (process.env.SEND_TO) {
      let seq = 0;
      setInterval(() => {
        seq += 1;
        const m = new Message(JSON.stringify({ seq }));
        m.contentType = 'application/json';
        m.contentEncoding = 'utf-8';
        m.properties.add('seq', String(seq));
        client.sendOutputEvent(process.env.SEND_TO, m, (se) => {
          if (se) log(`send ${seq} failed: ${se.message}`);
        });
      }, parseInt(process.env.SEND_MS || '500', 10));
    }
  });
}
