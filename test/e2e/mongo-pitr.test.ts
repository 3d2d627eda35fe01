// Point-in-time recovery of a replica-set member (the stand-in snapagent-test/mongo-rs:
// FerretDB with --replSet, its oplog in local.oplog.rs, a test-only applyOps): the
// daemon takes the first dump itself, then ships oplog slices every 5 s while a writer
// inserts, updates and deletes; it is killed with SIGKILL half-way and restarted. A
// restore to three chosen times (just after the dump, mid-way through --all --before, the
// last slice) into the wiped server gives exactly the writer's state at each of them. A
// reset oplog (as a new replica set, or one that rolled over) is a gap: a restore into
// it is refused, and the backup the daemon takes at once closes it. Status, metrics and
// a drill report the recovery point; verify re-reads every slice and names a damaged one.
// Dumps and slices are age-encrypted throughout.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Long, Timestamp, type BSON } from 'mongodb';
import { docker, requireDocker, snapagent, startSnapagent, workspace, type Running, type Workspace } from '../helpers/harness.ts';
import { ageKey, type AgeKey } from '../helpers/age.ts';
import { MONGO_RS_IMAGE, shopEvent, startMongoReplicaSet, type Mongo } from '../helpers/mongo.ts';
import { canon, ledger, Writer } from '../helpers/mongo-writer.ts';

const USER = 'root';
const SECRET = 'Pitr-s3cret/with:@chars';
const SLICE_SECONDS = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mongo point-in-time recovery (oplog stand-in)', () => {
  let m: Mongo;
  let ws: Workspace;
  let writer: Writer;
  let daemon: Running | undefined;
  let shopPrint: string;
  let host: string;
  let key: AgeKey;
  /** Each writer operation's oplog time (seconds), in order. */
  let opTimes: { seq: number; t: number }[] = [];
  let dumpLast: { t: number; i: number; time: string };
  let writerStopped: number;
  const figures: Record<string, number | string> = {};

  const startDaemon = () => (daemon = startSnapagent(['run', '--config', ws.config]));
  const stopDaemon = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!daemon) return;
    daemon.child.kill(signal);
    await daemon.exited;
    daemon = undefined;
  };
  const slicesDir = () => path.join(ws.backups, host, 'rs', 'pitr');
  /** Committed slices (slice.json written), by id. */
  const slices = (): { id: string; until: string; entries: number; after: { t: number; i: number }; last: { t: number; i: number } }[] =>
    existsSync(slicesDir())
      ? readdirSync(slicesDir())
          .filter((d) => existsSync(path.join(slicesDir(), d, 'slice.json')))
          .sort()
          .map((d) => JSON.parse(readFileSync(path.join(slicesDir(), d, 'slice.json'), 'utf8')))
      : [];
  const backups = async () => (await snapagent(['list', '--config', ws.config, '--json'])).json.backups as { id: string; stats: Record<string, any> }[];
  const waitFor = async (what: string, ok: () => boolean | Promise<boolean>, ms = 120_000) => {
    const end = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; daemon output:\n${daemon?.output() ?? ''}`);
      await sleep(500);
    }
  };
  /** The writer's state as of time `ms`: every operation whose oplog entry's second is not after it. */
  const stateAt = (ms: number) => {
    const t = Math.floor(ms / 1000);
    const last = opTimes.filter((o) => o.t <= t).at(-1)?.seq ?? 0;
    return { seq: last, docs: canon(writer.state(last)) };
  };
  const shopNow = async () => {
    const out: string[] = [];
    for (const coll of ['events', 'users']) {
      const c = m.client.db('shop').collection(coll);
      out.push(`${coll} ${await c.countDocuments({})} ${canon(await c.find({}, { sort: { _id: 1 } }).limit(50).toArray())}`);
    }
    return out.join('\n');
  };
  const wipe = async () => {
    for (const db of ['shop', 'app']) await m.client.db(db).dropDatabase();
  };

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', MONGO_RS_IMAGE).catch(() => {
      throw new Error(`image ${MONGO_RS_IMAGE} is missing: run \`make images\``);
    });
    m = await startMongoReplicaSet(USER, SECRET);
    await m.client.db('shop').collection('events').insertMany(Array.from({ length: 2000 }, (_, k) => shopEvent(k)));
    await m.client.db('shop').collection('users').insertMany(Array.from({ length: 200 }, (_, i) => ({ email: `user${i}@example.com` })));
    writer = new Writer(m.client);
    await writer.seedLedger();
    shopPrint = await shopNow();
    ws = workspace('');
    // dumps and slices are age-encrypted: every restore below decrypts them
    key = await ageKey(ws.dir);
    writeFileSync(ws.config, `
encryption: { age_recipients: [${key.recipient}], age_identity_file: ${key.identity} }
targets: [{ name: local, type: local, path: ${ws.backups} }]
tiers: { critical: { schedule: "0 2 1 1 *", keep: { last: 10 } } }
jobs:
  - name: rs
    plugin: mongo
    container: ${m.name}
    pitr: { slice_seconds: ${SLICE_SECONDS}, keep: 24h }
discovery: { labels: false }
daemon: { catch_up: false }
metrics: { textfile_dir: ${ws.dir}/state/textfile }
state_dir: ${ws.dir}/state
`);
    host = (await snapagent(['plan', '--config', ws.config, '--json'])).json.host;
  });

  after(async () => {
    await writer?.stop().catch(() => undefined);
    await stopDaemon('SIGKILL').catch(() => undefined);
    await m?.remove();
    ws?.cleanup();
    if (Object.keys(figures).length) console.log(`# figures: ${JSON.stringify(figures)}`);
  });

  it('the daemon dumps first, then ships slices while a writer writes; SIGKILL half-way loses no entry', async () => {
    startDaemon();
    // no backup yet: the capture asks for one
    await waitFor('the first dump', async () => (await backups()).length === 1);
    const dump = (await backups())[0]!;
    assert.equal(dump.stats.oplog, true);
    dumpLast = dump.stats.oplog_window.last;
    await waitFor('a first slice', () => slices().length > 0);

    writer.start(5);
    await sleep(3 * SLICE_SECONDS * 1000);
    // killed mid-slice: the next start resumes from the last committed slice
    await stopDaemon('SIGKILL');
    const shippedBeforeKill = slices().length;
    await sleep(2 * SLICE_SECONDS * 1000); // the writer goes on while no agent runs
    startDaemon();
    await sleep(3 * SLICE_SECONDS * 1000);
    await writer.stop();
    writerStopped = Date.now();
    await waitFor('a slice read after the writer stopped', () => slices().some((s) => Date.parse(s.until) > writerStopped + 1000));
    const out = daemon!.output();
    await stopDaemon();
    assert.equal(out.includes(SECRET), false, 'the password appears in no log line');
    assert.equal(out.includes(key.secret), false, 'the age identity appears in no log line');
    for (const s of slices()) {
      const meta = readFileSync(path.join(slicesDir(), s.id, 'slice.json'), 'utf8');
      assert.equal(meta.includes(SECRET), false);
      // shipped encrypted: no oplog entry can be read from the target without the identity
      const stored = readFileSync(path.join(slicesDir(), s.id, 'oplog.bson.zst.age'));
      assert.equal(stored.subarray(0, 21).toString(), 'age-encryption.org/v1', `slice ${s.id} is an age file`);
      assert.equal(stored.includes(Buffer.from('ledger')), false, `slice ${s.id} holds no clear text`);
    }
    figures.writer_ops = writer.ops.length;
    figures.slices = slices().length;
    assert.ok(shippedBeforeKill > 1 && slices().length > shippedBeforeKill);

    // every writer operation is in the oplog: their times give the expected states
    const oplog = await m.client.db('local').collection('oplog.rs').find({ ns: 'app.ledger' }).toArray();
    opTimes = oplog.map((e) => ({ seq: writer.opOf(e as unknown as { op: string; o: BSON.Document }), t: (e.ts as Timestamp).getHighBitsUnsigned() })).filter((o) => o.seq > 0);
    assert.equal(opTimes.at(-1)!.seq, writer.ops.at(-1)!.seq);

    // the slices chain from the dump without a gap, and hold every entry after it once
    const chain = slices();
    const entries = chain.reduce((n, s) => n + s.entries, 0);
    const after = await m.client.db('local').collection('oplog.rs').countDocuments({ ts: { $gt: new Timestamp({ t: dumpLast.t, i: dumpLast.i }) } });
    assert.equal(entries, after, 'the slices hold every oplog entry after the dump, none twice');
    for (let k = 1; k < chain.length; k++) assert.deepEqual(chain[k]!.after, chain[k - 1]!.last, `slice ${k} follows slice ${k - 1}`);
    for (const s of chain) assert.ok(existsSync(path.join(slicesDir(), s.id, 'slice.json.sig')), `slice ${s.id} is signed`);
  });

  it('status and metrics report the recovery point; a drill replays the slices and reports RTO and RPO', async () => {
    const st = await snapagent(['status', '--config', ws.config, '--json']);
    const job = st.json.jobs.find((j: { job: string }) => j.job === 'rs');
    assert.equal(job.pitr.slice_seconds, SLICE_SECONDS);
    assert.ok(!job.pitr.gap, JSON.stringify(job.pitr));
    assert.ok(Date.parse(job.recovery_point_at) >= writerStopped, `restorable to ${job.recovery_point_at}, after the last write`);
    const d = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    const r = d.json.results[0];
    assert.ok(r.details.point_in_time.slices > 0, 'the drill replayed the slices');
    assert.ok(r.rto_seconds > 0 && r.rpo_seconds >= 0);
    figures.drill_rto_seconds = r.rto_seconds;
    figures.drill_rpo_seconds = r.rpo_seconds;
    const prom = readFileSync(path.join(ws.dir, 'state', 'textfile', 'snapagent.prom'), 'utf8');
    assert.match(prom, /snapagent_recovery_point_age_seconds\{[^}]*job="rs"[^}]*\} \d/);
    assert.match(prom, /snapagent_pitr_gap\{[^}]*job="rs"[^}]*\} 0/);
    assert.match(prom, /snapagent_restore_drill_rpo_seconds\{[^}]*job="rs"/);
  });

  it('verify re-reads every slice (decrypted down to the log); a damaged one fails it with exit 3, naming it', async () => {
    const v = await snapagent(['verify', '--config', ws.config, '--json']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const sl = v.json.results.find((r: { kind: string }) => r.kind === 'slices');
    assert.ok(sl, JSON.stringify(v.json.results));
    assert.equal(sl.status, 'ok');
    assert.equal(sl.details.slices, slices().length);
    assert.equal(sl.details.decoded, slices().length, 'each slice opened with the identity, not only hashed');
    // one stored byte flipped in the middle slice, then put back for the restores below
    const victim = slices()[Math.floor(slices().length / 2)]!;
    const file = path.join(slicesDir(), victim.id, 'oplog.bson.zst.age');
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff;
    writeFileSync(file, bad);
    try {
      const f = await snapagent(['verify', '--config', ws.config, '--json']);
      assert.equal(f.code, 3, f.stdout + f.stderr);
      const r = f.json.results.find((x: { kind: string }) => x.kind === 'slices');
      assert.equal(r.status, 'failed');
      // age's authentication of the damaged chunk, or the sha256 of the stored bytes
      assert.match(r.errors.join(' '), new RegExp(`slice ${victim.id}: .*(sha256|age file)`));
    } finally {
      writeFileSync(file, good);
    }
  });

  it('restores to three chosen times: just after the dump, mid-way (--all --before), the last slice', async () => {
    const last = slices().at(-1)!;
    const points = [
      { name: 'after the dump', at: dumpLast.t * 1000 + 1000, args: (iso: string) => ['--job', 'rs', '--at', iso] },
      { name: 'mid-way', at: Math.floor((dumpLast.t * 1000 + writerStopped) / 2), args: (iso: string) => ['--all', '--before', iso] },
      { name: 'the last slice', at: Date.parse(last.until), args: (iso: string) => ['--job', 'rs', '--at', iso] },
    ];
    const seen = new Set<number>();
    for (const p of points) {
      const expected = stateAt(p.at);
      seen.add(expected.seq);
      await wipe();
      const started = Date.now();
      const r = await snapagent(['restore', '--config', ws.config, ...p.args(new Date(p.at).toISOString()), '--json']);
      figures[`restore_${p.name.replace(/ /g, '_')}_ms`] = Date.now() - started;
      assert.equal(r.code, 0, `${p.name}: ${r.stdout}${r.stderr}`);
      const res = r.json.results[0];
      assert.equal(res.point_in_time.at, new Date(p.at).toISOString());
      assert.equal(canon(await ledger(m.client)), expected.docs, `${p.name}: app.ledger is the writer's state after op ${expected.seq}`);
      assert.equal(await shopNow(), shopPrint, `${p.name}: the other collections are as they were`);
    }
    assert.equal(seen.size, 3, 'three different states');
  });

  it('a reset oplog is a gap: a restore into it is refused, and the backup the daemon takes at once closes it', async () => {
    const before = (await backups()).length;
    const lastBefore = slices().at(-1)!;
    // the server's oplog starts over (a new replica set; a roll-over loses entries the same way)
    const local = m.client.db('local');
    await local.collection('oplog.rs').drop();
    await local.createCollection('oplog.rs', { capped: true, size: 64 << 20 });
    const now = Math.floor(Date.now() / 1000);
    await local.collection('oplog.rs').insertOne({ op: 'n', ns: '', o: { msg: 'new set' }, ts: new Timestamp({ t: now, i: 1 }), t: Long.fromNumber(1), v: Long.fromNumber(2), wall: new Date() });
    await sleep(1500);
    writer.start(20);
    await sleep(2000);
    const inGap = Date.now();
    await sleep(1500);
    startDaemon();
    await daemon!.waitForLog((l) => /oplog gap/.test(String(l.msg)), 60_000);
    await waitFor('the backup that closes the gap', async () => (await backups()).length === before + 1);
    await sleep(2 * SLICE_SECONDS * 1000);
    await writer.stop();
    const stoppedAt = Date.now();
    await waitFor('a slice after the writer stopped', () => slices().some((s) => Date.parse(s.until) > stoppedAt + 1000));
    await stopDaemon();

    const refused = await snapagent(['restore', '--config', ws.config, '--job', 'rs', '--at', new Date(inGap).toISOString(), '--json']);
    assert.equal(refused.code, 4, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, /not covered without a gap/);
    assert.match(refused.stdout + refused.stderr, new RegExp(`reach ${lastBefore.until.slice(0, 16)}`));

    const st = await snapagent(['status', '--config', ws.config, '--json']);
    const job = st.json.jobs.find((j: { job: string }) => j.job === 'rs');
    assert.ok(job.pitr.last_gap?.closed_at, `the capture recorded the gap as closed: ${JSON.stringify(job.pitr)}`);

    const expected = canon(await ledger(m.client));
    const at = slices().at(-1)!.until;
    await wipe();
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rs', '--at', at, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(canon(await ledger(m.client)), expected, 'after the new dump, the restore reaches the last write');
    assert.equal(await shopNow(), shopPrint);
  });

  it('refuses --at for a time before any dump, and names it', async () => {
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rs', '--at', '2020-01-01T00:00:00Z', '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /no backup with an oplog position at or before 2020-01-01/);
  });
});
