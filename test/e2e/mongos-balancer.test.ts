// The balancer of a sharded cluster around a dump through a mongos (plugins/mongo/
// balancer.ts), against a FAKE mongos (test/helpers/fake-mongos.py, Debian's
// python3-mockupdb: no real sharded cluster can be had here). No Docker: the balancer is
// handled over the driver, the dump is a body that talks to the same fake. Each case
// asserts the exact sequence of the balancer commands the fake received.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { type BalancerStats, STOP_WAIT_MS, withBalancerStopped } from '../../plugins/mongo/balancer.ts';
import { connect } from '../../plugins/mongo/connection.ts';
import { type Command, DRIVER_HOUSEKEEPING, type FakeMongos, startFakeMongos } from '../helpers/fake-mongos.ts';

const log = pino({ level: 'silent' });
const running: FakeMongos[] = [];
after(async () => {
  for (const f of running) await f.stop();
});

async function fake(opts: Parameters<typeof startFakeMongos>[0] = {}): Promise<FakeMongos> {
  const f = await startFakeMongos(opts);
  running.push(f);
  return f;
}

const open = (f: FakeMongos) => () => connect({ host: '127.0.0.1', port: f.port }, undefined);

// "The dump": a command of its own on its own connection, so that the fake's log shows
// where it ran between the balancer commands.
async function dump(f: FakeMongos): Promise<string> {
  const c = await open(f)();
  try {
    await c.db('admin').command({ ping: 1, comment: 'the dump' });
  } finally {
    await c.close();
  }
  return 'dumped';
}

async function commands(f: FakeMongos): Promise<Command[]> {
  running.splice(running.indexOf(f), 1);
  return (await f.stop()).filter((c) => !DRIVER_HOUSEKEEPING.has(c.cmd));
}

// The balancer commands and the dump's ping, in order; listDatabases is connect()'s proof
// of authentication, sent once per connection.
const names = (cmds: Command[]) => cmds.filter((c) => c.cmd !== 'listDatabases').map((c) => c.cmd);
const connOf = (cmds: Command[], cmd: string) => cmds.filter((c) => c.cmd === cmd).map((c) => c.conn);

describe('mongos balancer around the dump (fake mongos)', () => {
  it('a running balancer: status, stop (waiting up to its limit), status, the dump, start on a fresh connection', async () => {
    const f = await fake({ balancer: 'full' });
    const r = await withBalancerStopped(open(f), 'mongos test', log, () => dump(f));
    const cmds = await commands(f);
    assert.deepEqual(names(cmds), ['balancerStatus', 'balancerStop', 'balancerStatus', 'ping', 'balancerStart']);
    assert.equal(r.value, 'dumped');
    assert.equal(r.failure, undefined);
    assert.equal(r.stats.was, 'full');
    assert.equal(r.stats.restarted, true);
    assert.ok(r.stats.stopped_at && !Number.isNaN(Date.parse(r.stats.stopped_at)));
    assert.deepEqual(cmds.find((c) => c.cmd === 'balancerStop')!.doc, { balancerStop: 1, maxTimeMS: STOP_WAIT_MS });
    // the restart does not reuse the connection that stopped it (a dump may take hours)
    const [stopConn] = connOf(cmds, 'balancerStop');
    const [startConn] = connOf(cmds, 'balancerStart');
    assert.notEqual(startConn, stopConn);
    assert.ok(connOf(cmds, 'listDatabases').includes(startConn!), 'the restart connection was opened (and checked) afresh');
  });

  it('a dump that throws: the balancer is restarted all the same and the dump\'s own error surfaces', async () => {
    const f = await fake({ balancer: 'full' });
    const boom = new Error('mongodump failed (exit code 1): connection reset');
    await assert.rejects(
      withBalancerStopped(open(f), 'mongos test', log, async () => {
        await dump(f);
        throw boom;
      }),
      (err) => err === boom,
    );
    assert.deepEqual(names(await commands(f)), ['balancerStatus', 'balancerStop', 'balancerStatus', 'ping', 'balancerStart']);
  });

  it('a balancer the operator turned off: no stop, no start after the dump', async () => {
    const f = await fake({ balancer: 'off' });
    const r = await withBalancerStopped(open(f), 'mongos test', log, () => dump(f));
    assert.deepEqual(names(await commands(f)), ['balancerStatus', 'ping']);
    assert.deepEqual(r.stats, { was: 'off', restarted: false } satisfies BalancerStats);
  });

  it('balancerStop fails (a round outlasts the wait): the balancer is turned back on, no dump runs, a clear error', async () => {
    const f = await fake({ balancer: 'full', fail: ['balancerStop'] });
    let ran = false;
    await assert.rejects(
      withBalancerStopped(open(f), 'mongos test', log, async () => {
        ran = true;
        return dump(f);
      }),
      /^SnapError: mongos test: could not stop the balancer \(operation exceeded time limit\), it is running again; nothing was dumped$/,
    );
    assert.equal(ran, false);
    assert.deepEqual(names(await commands(f)), ['balancerStatus', 'balancerStop', 'balancerStart']);
  });

  it('balancerStart fails after a good dump: the dump\'s value stands, the failure names the stopped balancer', async () => {
    const f = await fake({ balancer: 'full', fail: ['balancerStart'] });
    const r = await withBalancerStopped(open(f), 'mongos test', log, () => dump(f));
    assert.deepEqual(names(await commands(f)), ['balancerStatus', 'balancerStop', 'balancerStatus', 'ping', 'balancerStart']);
    assert.equal(r.value, 'dumped');
    assert.equal(r.stats.restarted, false);
    assert.match(String(r.failure), /the balancer is stopped: restarting it after the dump failed \(operation exceeded time limit\); run sh\.startBalancer\(\)/);
    assert.match(r.failure!.hint!, /the data of the dump is good/);
  });

  it('balancerStart fails after a failed dump: the error names the stopped balancer first, then the dump\'s failure', async () => {
    const f = await fake({ balancer: 'full', fail: ['balancerStart'] });
    await assert.rejects(
      withBalancerStopped(open(f), 'mongos test', log, async () => {
        throw new Error('mongodump failed (exit code 1)');
      }),
      /the balancer is stopped: .*run sh\.startBalancer\(\); and the backup failed: mongodump failed \(exit code 1\)$/,
    );
    assert.deepEqual(names(await commands(f)), ['balancerStatus', 'balancerStop', 'balancerStatus', 'balancerStart']);
  });
});
