#!/usr/bin/python3
"""The cloud side of `make demo`: IoT Hub's service calls against the local
stand-in (tests/iothub/server.js), as an operator would make them with
`az iot`. The stand-in is started by demo.sh with `--info FILE`; every command
reads where it listens from that file.

  cloud.py INFO device ID KEY       an IoT Edge device with that primary key
  cloud.py INFO deploy ID FILE      set a deployment (az iot edge set-modules)
  cloud.py INFO count ID            telemetry messages received from the device
  cloud.py INFO last ID N           the last N of them, one line each
  cloud.py INFO reported ID         the $edgeAgent twin's lastDesiredStatus and modules
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from iothub import IotHubStandin  # noqa: E402


def standin(info_file):
    with open(info_file) as f:
        info = json.load(f)
    hub = IotHubStandin(os.path.dirname(info_file), hostname=info["hostname"], host=info["host"])
    hub.mqtts_port, hub.https_port = info["mqttsPort"], info["httpsPort"]
    hub.service_key, hub.ca_file = info["serviceKey"], info["caFile"]
    return hub


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    hub, cmd, args = standin(argv[1]), argv[2], argv[3:]
    if cmd == "device":
        hub.create_device(args[0], edge=True, primary_key=args[1])
    elif cmd == "deploy":
        with open(args[1]) as f:
            hub.apply_configuration(args[0], json.load(f))
    elif cmd == "count":
        print(len(hub.telemetry(args[0])))
    elif cmd == "last":
        for m in hub.telemetry(args[0])[-int(args[1]):]:
            print("%s  %s/%s  %s" % (m["enqueuedTimeUtc"], m["deviceId"], m["moduleId"],
                                     m["body"].decode(errors="replace")))
    elif cmd == "reported":
        rep = hub.get_twin(args[0], "$edgeAgent")["properties"]["reported"]
        print("lastDesiredStatus:", json.dumps(rep.get("lastDesiredStatus")))
        for name, m in sorted(rep.get("modules", {}).items()):
            print("  %-8s %s" % (name, m.get("runtimeStatus")))
    else:
        sys.exit("cloud.py: unknown command %s\n%s" % (cmd, __doc__))


if __name__ == "__main__":
    main(sys.argv)
