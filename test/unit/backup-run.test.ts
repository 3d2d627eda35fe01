// The whole backup run (agent/backup/) with an in-memory plugin defined here, to local
// targets in a temp dir, without Docker: what a good run commits (artifact, signed
// manifest, right checksums, encrypted when configured), and that a producer failing
// mid-stream or a cancelled run leaves nothing listed; partial uploads never look like
// a backup meanwhile; a backup that left the datastore degraded is committed, its job failed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { backupJob } from '../../agent/backup/backup-job.ts';
import { type CatalogTrust } from '../../agent/catalog/manifest.ts';
import { readCatalog } from '../../agent/catalog/catalog.ts';
import { existingHostKey, makeKeyring } from '../../agent/catalog/signing.ts';
import { parseConfigText, type Config } from '../../agent/config/load.ts';
import type { Context } from '../../agent/context.ts';
import type { DockerClient } from '../../agent/docker/client.ts';
import { SnapError } from '../../agent/errors.ts';
import { makeProgress } from '../../agent/pipeline/progress.ts';
import type { DatastorePlugin, Job, PluginStats } from '../../agent/plugin/contract.ts';
import { selectTargets } from '../../agent/targets/index.ts';
import { PARTIAL_SUFFIX } from '../../agent/targets/target.ts';
import { ageKey } from '../helpers/age.ts';

const CHUNKS = Array.from({ length: 4 }, () => randomBytes(256 * 1024));
const DATA = Buffer.concat(CHUNKS);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface MemoryBehaviour {
  /** Throws instead of producing chunk number `failAt` (0-based). */
  failAt?: number;
  /** Called before each chunk is produced (e.g. to cancel the run there). */
  beforeChunk?: (i: number) => Promise<void> | void;
  /** What the stream's degraded() answers once the backup ran. */
  degraded?: SnapError;
}

// A plugin whose "datastore" is CHUNKS in memory. It records what the agent asked of it.
function memoryPlugin(b: MemoryBehaviour = {}) {
  const calls = { backup: 0, abort: 0, committed: 0 };
  const plugin: DatastorePlugin<Record<string, never>> = {
    name: 'memory',
    recordedOptions: [],
    parseOptions: () => ({}),
    check: async () => undefined,
    backup: async () => {
      calls.backup++;
      const stream = Readable.from(
        (async function* () {
          for (const [i, chunk] of CHUNKS.entries()) {
            await b.beforeChunk?.(i);
            if (i === b.failAt) throw new SnapError(`memory producer failed at chunk ${i}`);
            yield chunk;
          }
        })(),
      );
      const done = new Promise<PluginStats>((resolve, reject) => {
        stream.on('end', () => resolve({ chunks: CHUNKS.length, stream_bytes: DATA.length }));
        stream.on('error', reject);
        stream.on('close', () => reject(new Error('memory producer cut short')));
      });
      return {
        stream,
        artifact: { name: 'memory', format: 'bin' },
        done,
        source: { kind: 'memory' },
        abort: async () => void calls.abort++,
        committed: async () => void calls.committed++,
        ...(b.degraded ? { degraded: () => b.degraded } : {}),
      };
    },
    restore: () => Promise.reject(new Error('not in this test')),
    drill: () => Promise.reject(new Error('not in this test')),
  };
  return { plugin, calls };
}

// The run never needs Docker with this plugin: any call is a failure of the test.
const fakeDocker = new Proxy({} as DockerClient, {
  get: (_t, name) => () => Promise.reject(new Error(`the fake Docker client was asked for ${String(name)}`)),
});

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(extra = '') {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-backup-run-'));
  dirs.push(dir);
  const config = parseConfigText(
    `host: h1\nstate_dir: ${dir}/state\ntargets:\n  - { name: a, type: local, path: ${dir}/a }\n  - { name: b, type: local, path: ${dir}/b }\n${extra}`,
    'f.yml',
  );
  const job: Job = { name: 'mem', plugin: 'memory', tier: 'daily', origin: 'config', reason: 'test', stop: false, order: 0, targets: ['a', 'b'], options: {} };
  return { dir, config, job, targets: selectTargets(config) };
}

function context(config: Config, plugin: DatastorePlugin<any>, signal = new AbortController().signal): Context {
  return { config, docker: fakeDocker, registry: { memory: plugin }, progress: makeProgress(false), signal };
}

async function trust(config: Config): Promise<CatalogTrust> {
  return { keys: makeKeyring(config.trusted_keys, await existingHostKey(config.stateDir)), plugins: ['memory'] };
}

// Nothing a reader could take for a backup, and nothing left behind at all.
async function assertNothingListed(s: ReturnType<typeof setup>) {
  for (const t of s.targets) {
    const cat = await readCatalog(t, 'h1/', await trust(s.config));
    assert.deepEqual(cat.backups, [], `target ${t.name}: no backup`);
    assert.deepEqual(cat.incomplete, [], `target ${t.name}: no leftover directory`);
    assert.deepEqual(await t.list('h1/'), [], `target ${t.name}: no file`);
  }
}

describe('backup run (in-memory plugin, local targets)', () => {
  it('commits the artifact and a signed manifest to every target, with the right size and checksums', async () => {
    const s = setup();
    const { plugin, calls } = memoryPlugin();
    const r = await backupJob(context(s.config, plugin), s.job, s.targets);
    assert.equal(r.status, 'ok', r.error);
    assert.deepEqual(r.targets, [{ target: 'a', status: 'ok' }, { target: 'b', status: 'ok' }]);
    assert.equal(r.raw_size, DATA.length);
    assert.ok(r.id?.endsWith('-daily'));
    assert.deepEqual(calls, { backup: 1, abort: 0, committed: 1 });
    for (const t of s.targets) {
      const [b, ...more] = (await readCatalog(t, 'h1/', await trust(s.config))).backups;
      assert.ok(b && more.length === 0, `target ${t.name}: one backup`);
      assert.equal(b.signature.state, 'signed');
      const m = b.manifest;
      assert.deepEqual([m.id, m.job, m.plugin, m.tier, m.host], [r.id, 'mem', 'memory', 'daily', 'h1']);
      assert.deepEqual(m.stats, { chunks: 4, stream_bytes: DATA.length });
      assert.deepEqual(m.source, { kind: 'memory' });
      const a = m.artifacts[0]!;
      assert.deepEqual([a.name, a.format, a.compression, a.encryption, a.raw_size], ['memory.bin.zst', 'bin', 'zstd', 'none', DATA.length]);
      const stored = await t.readFile(`${b.dir}/${a.name}`);
      assert.deepEqual([a.size, a.sha256], [stored.length, sha256(stored)]);
      assert.deepEqual([r.size, r.sha256], [a.size, a.sha256]);
      assert.ok(execFileSync('zstd', ['-dc'], { input: stored, maxBuffer: 64 << 20 }).equals(DATA), 'the artifact decompresses to the plugin bytes');
      assert.ok((await t.list('h1/')).every((f) => !f.key.endsWith(PARTIAL_SUFFIX)));
    }
  });

  it('a producer that fails mid-stream leaves nothing listed, the plugin undone and no after-commit', async () => {
    const s = setup();
    const { plugin, calls } = memoryPlugin({ failAt: 2 });
    const r = await backupJob(context(s.config, plugin), s.job, s.targets);
    assert.equal(r.status, 'failed');
    assert.match(r.error ?? '', /memory producer failed at chunk 2/);
    assert.deepEqual(calls, { backup: 1, abort: 1, committed: 0 });
    await assertNothingListed(s);
  });

  it('a cancelled run leaves nothing listed; before that, the partial upload did not look like a backup', async () => {
    const s = setup();
    const cancel = new AbortController();
    let seen: { partial: boolean; listed: number } | undefined;
    const { plugin, calls } = memoryPlugin({
      beforeChunk: async (i) => {
        if (i !== 2) return;
        const t = s.targets[0]!;
        const partial = async () => (await t.list('h1/')).some((f) => f.key.endsWith(PARTIAL_SUFFIX));
        for (let waited = 0; !(await partial()) && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10)); // the upload has begun
        seen = { partial: await partial(), listed: (await readCatalog(t, 'h1/', await trust(s.config))).backups.length };
        cancel.abort(new SnapError('cancelled by the test'));
      },
    });
    const r = await backupJob(context(s.config, plugin, cancel.signal), s.job, s.targets);
    assert.deepEqual(seen, { partial: true, listed: 0 });
    assert.equal(r.status, 'failed');
    assert.equal(r.error, 'cancelled by the test');
    assert.deepEqual(calls, { backup: 1, abort: 1, committed: 0 });
    await assertNothingListed(s);
  });

  it('a good backup that left the datastore degraded is committed, and the job fails naming that first', async () => {
    const s = setup();
    const { plugin, calls } = memoryPlugin({ degraded: new SnapError('the balancer is stopped', { hint: 'run sh.startBalancer()' }) });
    const r = await backupJob(context(s.config, plugin), s.job, s.targets);
    assert.equal(r.status, 'failed');
    assert.deepEqual([r.error, r.hint], ['the balancer is stopped', 'run sh.startBalancer()']);
    assert.deepEqual(r.targets, [{ target: 'a', status: 'ok' }, { target: 'b', status: 'ok' }]);
    assert.deepEqual(calls, { backup: 1, abort: 0, committed: 1 });
    for (const t of s.targets) assert.equal((await readCatalog(t, 'h1/', await trust(s.config))).backups[0]?.manifest.id, r.id, `target ${t.name}: committed`);
  });

  it('with encryption on, the artifact is an age file for the recipients that opens to the plugin bytes', async () => {
    const keyDir = mkdtempSync(path.join(tmpdir(), 'snapagent-backup-run-key-'));
    dirs.push(keyDir);
    const key = await ageKey(keyDir);
    const s = setup(`encryption: { age_recipients: [${key.recipient}] }\n`);
    const { plugin } = memoryPlugin();
    const r = await backupJob(context(s.config, plugin), s.job, s.targets);
    assert.equal(r.status, 'ok', r.error);
    const b = (await readCatalog(s.targets[0]!, 'h1/', await trust(s.config))).backups[0]!;
    const a = b.manifest.artifacts[0]!;
    assert.deepEqual([a.name, a.encryption, a.recipients], ['memory.bin.zst.age', 'age', [key.recipient]]);
    const file = path.join(s.dir, 'a', b.dir, a.name);
    const stored = readFileSync(file);
    assert.ok(stored.subarray(0, 21).toString() === 'age-encryption.org/v1', 'an age file');
    assert.equal(sha256(stored), a.sha256);
    const zst = execFileSync('age', ['-d', '-i', key.identity, file], { maxBuffer: 64 << 20 });
    assert.ok(execFileSync('zstd', ['-dc'], { input: zst, maxBuffer: 64 << 20 }).equals(DATA));
    assert.equal(existsSync(path.join(s.config.stateDir, 'tmp')) ? execFileSync('ls', ['-A', path.join(s.config.stateDir, 'tmp')]).toString() : '', '', 'the recipients file is gone');
  });
});
