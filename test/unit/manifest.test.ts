// buildManifest: the manifest of a finished run is one the catalog accepts as it is,
// with the figures it was given, and says encrypted exactly when it was.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { artifactFileName, buildManifest, manifestSchema, MANIFEST_FORMAT, sanityProblems, type ManifestFacts } from '../../agent/catalog/manifest.ts';
import { VERSION } from '../../agent/version.ts';

const SHA = 'ab'.repeat(32);

function facts(over: Partial<ManifestFacts> = {}): ManifestFacts {
  return {
    id: '20261121T020000Z-critical',
    host: 'h1',
    job: { name: 'files', plugin: 'volume', tier: 'critical', options: { exclude: ['cache'] } },
    started: new Date('2026-11-21T02:00:00.250Z'),
    finished: new Date('2026-11-21T02:00:12.750Z'),
    source: { volume: 'files' },
    stats: { files: 3 },
    artifact: { name: artifactFileName('volume', 'tar', false), format: 'tar', size: 100, sha256: SHA, rawSize: 4096 },
    timings: { prepare_seconds: 0.5, stream_seconds: 11, finish_seconds: 1 },
    ...over,
  };
}

describe('buildManifest', () => {
  it('records the run as the catalog reads it: valid, plausible, its figures and times', () => {
    const m = buildManifest(facts());
    assert.deepEqual(manifestSchema.parse(m), m);
    assert.deepEqual(sanityProblems(m, ['volume'], Date.parse('2026-11-21T03:00:00Z')), []);
    assert.equal(m.format, MANIFEST_FORMAT);
    assert.deepEqual(m.agent, { name: 'snapagent', version: VERSION });
    assert.deepEqual([m.id, m.host, m.job, m.plugin, m.tier], ['20261121T020000Z-critical', 'h1', 'files', 'volume', 'critical']);
    assert.equal(m.started_at, '2026-11-21T02:00:00.250Z');
    assert.equal(m.finished_at, '2026-11-21T02:00:12.750Z');
    assert.equal(m.duration_seconds, 12.5);
    assert.deepEqual(m.options, { exclude: ['cache'] });
    assert.deepEqual(m.source, { volume: 'files' });
    assert.deepEqual(m.stats, { files: 3 });
    assert.deepEqual(m.timings, { prepare_seconds: 0.5, stream_seconds: 11, finish_seconds: 1 });
    assert.deepEqual(m.artifacts, [{ name: 'volume.tar.zst', format: 'tar', compression: 'zstd', encryption: 'none', size: 100, sha256: SHA, raw_size: 4096 }]);
  });

  it('an encrypted artifact says age and names its recipients; a plain one has no recipients field', () => {
    const recipients = ['age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq'];
    const m = buildManifest(facts({ artifact: { ...facts().artifact, name: artifactFileName('volume', 'tar', true), recipients } }));
    assert.equal(m.artifacts[0]!.name, 'volume.tar.zst.age');
    assert.equal(m.artifacts[0]!.encryption, 'age');
    assert.deepEqual(m.artifacts[0]!.recipients, recipients);
    assert.equal('recipients' in buildManifest(facts()).artifacts[0]!, false);
  });

  it('is pure: the same facts give the same manifest', () => {
    assert.deepEqual(buildManifest(facts()), buildManifest(facts()));
  });
});
