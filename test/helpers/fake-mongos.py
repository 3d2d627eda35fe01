#!/usr/bin/python3
# A FAKE mongos: no real sharded cluster can be had here, so the balancer handling of the
# mongo plugin (plugins/mongo/balancer.ts) is tested against this scripted wire-protocol
# server (Debian's python3-mockupdb). It answers only what the driver and the plugin
# send: hello/isMaster as a mongos (msg "isdbgrid"), buildInfo, listDatabases, ping,
# endSessions, and balancerStatus/balancerStop/balancerStart over one balancer mode. It
# has no data and no authentication. Any other command is refused ("no such command").
#   fake-mongos.py [--balancer full|off] [--fail COMMAND]...
# --fail makes a command fail as MongoDB does when it times out (MaxTimeMSExpired); a
# balancerStop that fails still turns the balancer off first, as mongos does when the
# running round outlasts maxTimeMS. Prints {"port": N} once listening on 127.0.0.1,
# then one JSON line per command received: {"cmd", "conn" (the client's port), "doc"}.
import argparse
import json
import sys
import threading

from bson import json_util
from mockupdb import OP_MSG_FLAGS, MockupDB, OpMsg

parser = argparse.ArgumentParser()
parser.add_argument('--balancer', choices=['full', 'off'], default='full')
parser.add_argument('--fail', action='append', default=[])
args = parser.parse_args()

state = {'mode': args.balancer}
lock = threading.Lock()


def log(request, name):
    doc = {k: v for k, v in request.doc.items() if not k.startswith('$') and k != 'lsid'}
    line = json_util.dumps({'cmd': name, 'conn': request.client_port, 'doc': doc})
    with lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


def handle(request):
    name = request.command_name or ''
    log(request, name)
    if isinstance(request, OpMsg) and request.flags & OP_MSG_FLAGS['moreToCome']:
        return True  # unacknowledged (the driver's endSessions on close): no reply
    key = name.lower()
    if key in ('hello', 'ismaster'):
        return request.ok(ismaster=True, isWritablePrimary=True, helloOk=True, msg='isdbgrid', minWireVersion=0, maxWireVersion=21,
                          maxBsonObjectSize=16777216, maxMessageSizeBytes=48000000, maxWriteBatchSize=100000, logicalSessionTimeoutMinutes=30)
    if name in args.fail:
        if name == 'balancerStop':
            state['mode'] = 'off'
        return request.command_err(code=50, errmsg='operation exceeded time limit', codeName='MaxTimeMSExpired')
    if name == 'buildInfo':
        return request.ok(version='7.0.14', versionArray=[7, 0, 14, 0])
    if name == 'listDatabases':
        return request.ok(databases=[{'name': 'admin'}, {'name': 'config'}], totalSize=0)
    if name in ('ping', 'endSessions'):
        return request.ok()
    if name == 'balancerStatus':
        return request.ok(mode=state['mode'], inBalancerRound=False, numBalancerRounds=7)
    if name == 'balancerStop':
        state['mode'] = 'off'
        return request.ok()
    if name == 'balancerStart':
        state['mode'] = 'full'
        return request.ok()
    return request.command_err(code=59, errmsg=f'no such command: {name!r}', codeName='CommandNotFound')


server = MockupDB(port=0)
server.autoresponds(handle)
port = server.run()
sys.stdout.write(json.dumps({'port': port}) + '\n')
sys.stdout.flush()
# Until the test closes our stdin (or kills us).
sys.stdin.read()
server.stop()
