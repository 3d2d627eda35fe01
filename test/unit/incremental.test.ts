// Incremental chains in the core (agent/backup/base.ts, catalog/chain.ts, the restore's
// chain, verify, prune), with an in-memory plugin defined here that stores files by
// content: a backup on a base ships only the files whose sha256 changed and indexes every
// file with the backup that holds it. Local targets in a temp dir, no Docker. The real
// plugins' chains are tested against real servers in test/e2e/ and test/contract/.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { backupJob } from '../../agent/backup/backup-job.ts';
import { chooseBase } from '../../agent/backup/base.ts';
import { chainOf } from '../../agent/catalog/chain.ts';
import { dataArtifact, indexArtifact, type CatalogTrust, type Listed, type Manifest } from '../../agent/catalog/manifest.ts';
import { readCatalog } from '../../agent/catalog/catalog.ts';
import { decide } from '../../agent/catalog/prune.ts';
import { existingHostKey, makeKeyring } from '../../agent/catalog/signing.ts';
import { verifyBackup } from '../../agent/catalog/verify.ts';
import { parseConfigText, type Config } from '../../agent/config/load.ts';
import type { Context } from '../../agent/context.ts';
import type { DockerClient } from '../../agent/docker/client.ts';
import { IntegrityError, SnapError } from '../../agent/errors.ts';
import { makeProgress } from '../../agent/pipeline/progress.ts';
import type { DatastorePlugin, Job, PluginIndex, PluginStats } from '../../agent/plugin/contract.ts';
import { restoreBackup } from '../../agent/restore/restore-job.ts';
import { selectTargets } from '../../agent/targets/index.ts';
import type { Target } from '../../agent/targets/target.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
type Index = Record<string, { sha: string; in: string }>;

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

// The "datastore": `files`. A restore only replaces `restored` after `integrity`, as a
// real plugin may only touch live data then.
function filesPlugin(files: Map<string, string>, o: { failProducer?: boolean } = {}) {
  const seen = { bases: [] as (string | undefined)[], piecesRead: [] as string[][] };
  let restored: Map<string, string> | undefined;
  const plugin: DatastorePlugin<Record<string, never>> = {
    name: 'memory',
    recordedOptions: [],
    incremental: true,
    parseOptions: () => ({}),
    check: async () => undefined,
    backup: async (ctx) => {
      seen.bases.push(ctx.base?.id);
      const base: Index = ctx.base ? (JSON.parse(ctx.base.index.toString('utf8')) as Index) : {};
      const index: Index = {};
      const shipped: Record<string, string> = {};
      for (const [name, text] of files) {
        const sha = sha256(text);
        if (base[name]?.sha === sha) index[name] = base[name]!;
        else ((index[name] = { sha, in: ctx.backupId! }), (shipped[name] = text));
      }
      const payload = Buffer.from(JSON.stringify(shipped));
      const stream = Readable.from(
        (async function* () {
          if (o.failProducer) throw new SnapError('the producer failed');
          yield payload;
        })(),
      );
      const done = new Promise<PluginStats>((resolve, reject) => {
        stream.on('end', () => resolve({ files: files.size, shipped: Object.keys(shipped).length, stream_bytes: payload.length }));
        stream.on('error', reject);
      });
      const deps = [...new Set(Object.values(index).map((e) => e.in))].filter((id) => id !== ctx.backupId);
      const represented = [...files.values()].reduce((n, t) => n + t.length, 0);
      const idx = done.then((): PluginIndex => ({ format: 'json', bytes: Buffer.from(JSON.stringify(index)), dependsOn: deps, representedBytes: represented }));
      idx.catch(() => undefined);
      return { stream, artifact: { name: 'files', format: 'json' }, done, index: idx, source: {}, abort: async () => undefined };
    },
    restore: async (_ctx, _job, src, opts) => {
      const index = JSON.parse(opts.index!.toString('utf8')) as Index;
      const needed = new Set(Object.values(index).map((e) => e.in));
      const held = new Map<string, Record<string, string>>();
      const read: string[] = [];
      for (const p of opts.chain) {
        if (!needed.has(p.id)) continue;
        read.push(p.id);
        held.set(p.id, JSON.parse((await readAll(p.input.stream())).toString('utf8')) as Record<string, string>);
      }
      held.set(opts.id, JSON.parse((await readAll(src.stream())).toString('utf8')) as Record<string, string>);
      seen.piecesRead.push(read);
      await opts.integrity;
      const out = new Map<string, string>();
      for (const [name, e] of Object.entries(index)) {
        const text = held.get(e.in)?.[name];
        if (text === undefined || sha256(text) !== e.sha) throw new IntegrityError(`${name}: not in backup ${e.in}`);
        out.set(name, text);
      }
      if (out.size !== opts.expected.files) throw new IntegrityError('file count differs');
      restored = out;
      return { destination: 'memory', stats: { files: out.size }, restarted: [] };
    },
    drill: () => Promise.reject(new Error('not in this test')),
  };
  return { plugin, seen, restored: () => restored };
}

const fakeDocker = new Proxy({} as DockerClient, {
  get: (_t, name) => () => Promise.reject(new Error(`the fake Docker client was asked for ${String(name)}`)),
});

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(extra = '') {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-incremental-'));
  dirs.push(dir);
  const config = parseConfigText(
    `host: h1\nstate_dir: ${dir}/state\ntargets:\n  - { name: a, type: local, path: ${dir}/a }\n  - { name: b, type: local, path: ${dir}/b }\ntiers:\n  daily: { schedule: "0 2 * * *", keep: { daily: 30 } }\n${extra}`,
    'f.yml',
  );
  const job: Job = { name: 'mem', plugin: 'memory', tier: 'daily', origin: 'config', reason: 'test', stop: false, order: 0, targets: ['a', 'b'], options: {}, fullEvery: '7d' };
  return { dir, config, job, targets: selectTargets(config) };
}

const ctxOf = (config: Config, plugin: DatastorePlugin<any>): Context => ({ config, docker: fakeDocker, registry: { memory: plugin }, progress: makeProgress(false), signal: new AbortController().signal });

async function trust(config: Config): Promise<CatalogTrust> {
  return { keys: makeKeyring(config.trusted_keys, await existingHostKey(config.stateDir)), plugins: ['memory'] };
}

async function catalog(config: Config, t: Target): Promise<Listed[]> {
  return (await readCatalog(t, 'h1/mem', await trust(config))).backups;
}

async function backup(s: ReturnType<typeof setup>, plugin: DatastorePlugin<any>) {
  const r = await backupJob(ctxOf(s.config, plugin), s.job, s.targets);
  assert.equal(r.status, 'ok', r.error);
  return r;
}

describe('incremental backups (in-memory plugin, local targets)', () => {
  it('a chain of a full and 3 increments stores what changed, and each point restores exactly its own state', async () => {
    const s = setup();
    const files = new Map([['a', 'A'.repeat(5000)], ['b', 'B'.repeat(5000)], ['c', 'C'.repeat(5000)]]);
    const { plugin, seen, restored } = filesPlugin(files);
    const states: Map<string, string>[] = [];
    const ids: string[] = [];
    const steps = [
      () => undefined,
      () => files.set('d', 'new file'),
      () => (files.delete('a'), files.set('b', 'changed')),
      () => (files.set('e', files.get('c')!), files.delete('c')), // a rename
    ];
    for (const step of steps) {
      step();
      states.push(new Map(files));
      ids.push((await backup(s, plugin)).id!);
    }
    assert.deepEqual(seen.bases, [undefined, ids[0], ids[1], ids[2]]);
    const cat = await catalog(s.config, s.targets[0]!);
    const m = (id: string) => cat.find((b) => b.manifest.id === id)!.manifest;
    assert.equal(m(ids[0]!).kind, 'full');
    assert.equal(m(ids[0]!).depends_on, undefined);
    for (const id of ids.slice(1)) assert.equal(m(id).kind, 'incremental');
    // the plugin named only the backups holding files it reuses; the core closed the chain
    assert.deepEqual(m(ids[1]!).depends_on, [ids[0]]);
    assert.deepEqual(m(ids[3]!).depends_on, [ids[0], ids[1], ids[2]]);
    assert.ok(dataArtifact(m(ids[1]!)).raw_size < 100, 'the increment holds only the new file');
    assert.equal(m(ids[1]!).represented_size, 15008);
    assert.equal(indexArtifact(m(ids[1]!))?.name, 'index.json.zst');
    for (const [i, id] of ids.entries()) {
      const l = cat.find((b) => b.manifest.id === id)!;
      const r = await restoreBackup(ctxOf(s.config, plugin), l, s.job, { stop: false, force: false });
      assert.equal(r.status, 'ok', r.error);
      assert.deepEqual(restored(), states[i], `the state at backup ${i}`);
    }
    // the last point's files live in backups 1 (d), 2 (b) and 3 (e, a new name): the
    // plugin read only those pieces, not the full
    assert.deepEqual(seen.piecesRead.at(-1), [ids[1], ids[2]]);
    // verify covers the chain
    const v = await verifyBackup(s.config, cat.find((b) => b.manifest.id === ids[3])!, new AbortController().signal, false, cat);
    assert.equal(v.status, 'ok', v.errors.join('; '));
    assert.deepEqual(v.details.chain, ids.slice(0, 3));
    assert.equal((v.details.artifacts as unknown[]).length, 8, 'data and index of 4 backups');
  });

  it('a damaged piece: restore of the increment fails with exit 3 before anything is replaced, verify fails, and the next backup is a full', async () => {
    const s = setup();
    const files = new Map([['a', 'A'.repeat(4000)], ['b', 'B'.repeat(4000)]]);
    const { plugin, seen, restored } = filesPlugin(files);
    const full = (await backup(s, plugin)).id!;
    files.set('c', 'c');
    const inc = (await backup(s, plugin)).id!;
    const cat = await catalog(s.config, s.targets[0]!);
    const f = cat.find((b) => b.manifest.id === full)!;
    const file = path.join(s.dir, 'a', f.dir, dataArtifact(f.manifest).name);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(file, bytes);
    const r = await restoreBackup(ctxOf(s.config, plugin), cat.find((b) => b.manifest.id === inc)!, s.job, { stop: false, force: false });
    assert.equal(r.status, 'failed');
    assert.equal(r.exitCode, 3, r.error);
    assert.equal(restored(), undefined, 'nothing was replaced');
    const v = await verifyBackup(s.config, cat.find((b) => b.manifest.id === inc)!, new AbortController().signal, false, cat);
    assert.equal(v.status, 'failed');
    assert.equal(v.exitCode, 3);
    // the failed verify record makes the next backup a full
    await backup(s, plugin);
    assert.equal(seen.bases.at(-1), undefined);
  });

  it('a missing base: the increment is refused with exit 3 naming it, and the next backup is a full', async () => {
    const s = setup();
    const files = new Map([['a', 'A']]);
    const { plugin, seen } = filesPlugin(files);
    const full = (await backup(s, plugin)).id!;
    files.set('b', 'B');
    const inc = (await backup(s, plugin)).id!;
    for (const t of s.targets) await t.removeDir(`h1/mem/${full}`);
    const cat = await catalog(s.config, s.targets[0]!);
    const l = cat.find((b) => b.manifest.id === inc)!;
    assert.throws(() => chainOf(l, cat), (err: Error) => err instanceof IntegrityError && err.message.includes(full));
    const r = await restoreBackup(ctxOf(s.config, plugin), l, s.job, { stop: false, force: false });
    assert.equal(r.exitCode, 3);
    assert.match(r.error ?? '', new RegExp(`needs backup ${full}, which is not on the target`));
    files.set('c', 'C');
    await backup(s, plugin);
    assert.equal(seen.bases.at(-1), undefined, 'a broken chain is no base');
  });

  it('a failed run never becomes a base; a target that missed a run gets a full; an old full starts a new chain', async () => {
    const s = setup();
    const files = new Map([['a', 'A']]);
    const good = filesPlugin(files);
    const first = (await backup(s, good.plugin)).id!;
    const failing = filesPlugin(files, { failProducer: true });
    const r = await backupJob(ctxOf(s.config, failing.plugin), s.job, s.targets);
    assert.equal(r.status, 'failed');
    files.set('b', 'B');
    await backup(s, good.plugin);
    assert.equal(good.seen.bases.at(-1), first, 'the failed run is not the base');
    // target b loses its newest backup: the newest ids differ, so a full
    const [onA] = (await catalog(s.config, s.targets[0]!)).filter((b) => b.manifest.id !== first);
    await s.targets[1]!.removeDir(onA!.dir);
    await backup(s, good.plugin);
    assert.equal(good.seen.bases.at(-1), undefined);
    // full_every: 8 days later the chain's full is due
    const cats = new Map(await Promise.all(s.targets.map(async (t) => [t, await catalog(s.config, t)] as const)));
    const now = new Date(Date.now() + 8 * 86_400_000);
    const choice = await chooseBase(s.config, s.job, true, cats, new AbortController().signal, now);
    assert.equal(choice.base, undefined);
    assert.match(choice.fullBecause ?? '', /older than full_every 7d/);
    assert.ok((await chooseBase(s.config, s.job, true, cats, new AbortController().signal)).base, 'today it is a base');
    assert.match((await chooseBase(s.config, { ...s.job, fullEvery: undefined }, true, cats, new AbortController().signal)).fullBecause ?? '', /off/);
  });

  it('an encrypted chain restores with the identity, and its index is encrypted too', async () => {
    const { ageKey } = await import('../helpers/age.ts');
    const keyDir = mkdtempSync(path.join(tmpdir(), 'snapagent-incremental-key-'));
    dirs.push(keyDir);
    const key = await ageKey(keyDir);
    const s = setup(`encryption: { age_recipients: [${key.recipient}], age_identity_file: ${key.identity} }\n`);
    const files = new Map([['a', 'A'.repeat(3000)]]);
    const { plugin, seen, restored } = filesPlugin(files);
    await backup(s, plugin);
    rmSync(path.join(s.config.stateDir, 'index'), { recursive: true }); // the base's index is read back from the target
    files.set('b', 'B');
    const inc = (await backup(s, plugin)).id!;
    assert.ok(seen.bases.at(-1));
    const cat = await catalog(s.config, s.targets[1]!);
    const l = cat.find((b) => b.manifest.id === inc)!;
    assert.equal(indexArtifact(l.manifest)?.encryption, 'age');
    const r = await restoreBackup(ctxOf(s.config, plugin), l, s.job, { stop: false, force: false });
    assert.equal(r.status, 'ok', r.error);
    assert.deepEqual(restored(), files);
  });
});

// Retention over 40 simulated days of a daily job with weekly fulls and `daily: 30`:
// every backup a kept one depends on is kept, with the reason.
describe('retention of incremental chains', () => {
  it('keeps every base a kept increment needs, and about 5 fulls', () => {
    const config = parseConfigText('host: h1\ntargets: [{ name: a, type: local, path: /x }]\ntiers:\n  daily: { schedule: "0 2 * * *", keep: { daily: 30 } }\n', 'f.yml');
    const start = Date.UTC(2026, 9, 1, 2);
    const backups: Listed[] = [];
    let chain: string[] = [];
    for (let day = 0; day < 40; day++) {
      const at = new Date(start + day * 86_400_000);
      const id = `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-daily`;
      if (day % 7 === 0) chain = [];
      const m = { id, job: 'mem', tier: 'daily', started_at: at.toISOString(), finished_at: at.toISOString(), kind: chain.length ? 'incremental' : 'full', ...(chain.length ? { depends_on: [...chain] } : {}), artifacts: [] } as unknown as Manifest;
      backups.push({ manifest: m, dir: `h1/mem/${id}`, checks: {}, signature: { state: 'signed' } } as unknown as Listed);
      chain.push(id);
    }
    const report = decide(config, 'mem', 'a', backups);
    const kept = new Set(report.kept.map((k) => k.id));
    for (const b of backups.filter((x) => kept.has(x.manifest.id))) for (const d of b.manifest.depends_on ?? []) assert.ok(kept.has(d), `${d} (needed by ${b.manifest.id}) is kept`);
    const fulls = backups.filter((b) => kept.has(b.manifest.id) && b.manifest.kind === 'full').length;
    assert.equal(fulls, 5);
    assert.ok(report.kept.some((k) => k.reasons.some((r) => r.startsWith('needed by the incremental backup'))));
    assert.equal(report.removed.length + report.kept.length, 40);
    assert.ok(report.removed.length >= 4, 'what no kept backup needs goes');
  });
});
