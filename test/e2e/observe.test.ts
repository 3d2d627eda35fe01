// Observability through the real CLI and Docker with the volume plugin: the metrics
// textfile after each run (promtool-checked, a failed run keeps the last success), the
// webhook and command notifications received by a local HTTP server and a real process,
// `snapagent status` exit codes for fresh, stale (seen from the future with libfaketime)
// and failed jobs, and the run id on every log line.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, fakeClockAhead, removeVolume, requireDocker, snapagent, uniq, type CliResult } from '../helpers/harness.ts';
import { httpSink, type HttpSink } from '../helpers/http-sink.ts';
import { leaksIn } from '../helpers/leak-scan.ts';
import { promtool } from '../helpers/promtool.ts';
import { restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, snapshot, type Snapshot } from '../helpers/tree.ts';

/** The value of each series, keyed by `name{labels}` as written in the file. */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Every stderr line is a JSON log line; returns them. */
function logLines(r: CliResult): { run: string; msg: string; level: number; [k: string]: unknown }[] {
  return r.stderr
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        assert.fail(`a log line is not JSON: ${line}`);
      }
    });
}

describe('metrics, status and notifications (volume plugin, local target)', () => {
  const vol = uniq('sa-obs');
  const copy = uniq('sa-obs-copy');
  const L = 'job="obs",plugin="volume",tier="hourly",target="local"';
  let ws: ConfigWorkspace;
  let sink: HttpSink;
  let original: Snapshot;
  let env: Record<string, string>;
  let metricsFile: string;
  let eventsFile: string;

  before(async () => {
    await requireDocker();
    original = await filledVolume(vol, 'mkdir -p /v/d && seq 1 100000 > /v/numbers && head -c 300000 /dev/urandom > /v/d/random && echo hi > /v/d/hello');
    sink = await httpSink();
    env = { SNAPAGENT_TEST_WEBHOOK: sink.url };
    ws = config((w) => ({
      tiers: { hourly: { schedule: '0 * * * *', keep: { last: 10 } } },
      jobs: [volumeJob('obs', vol, { tier: 'hourly' })],
      metrics: { textfile_dir: './textfile' },
      notifications: {
        on: ['failure', 'success'],
        webhook: { url_env: 'SNAPAGENT_TEST_WEBHOOK' },
        command: ['sh', '-c', `cat >> ${w.dir}/events.jsonl; echo >> ${w.dir}/events.jsonl`],
      },
    }));
    metricsFile = path.join(ws.dir, 'textfile', 'snapagent.prom');
    eventsFile = path.join(ws.dir, 'events.jsonl');
  });

  after(async () => {
    await sink?.close();
    await removeVolume(vol);
    await removeVolume(copy);
    ws?.cleanup();
  });

  const metrics = () => parseProm(readFileSync(metricsFile, 'utf8'));
  const run = (args: string[], extra: Record<string, string> = {}) => snapagent(args, { ...env, ...extra });
  const backup = () => run(['backup', '--config', ws.config, '--json']);

  it('after a backup: promtool accepts the metrics file, its figures match the backup; webhook and command get the event; the restore is identical', async () => {
    const b = await backup();
    assert.equal(b.code, 0, b.stderr);
    const result = b.json.results[0];
    const check = await promtool(['check', 'metrics'], readFileSync(metricsFile, 'utf8'));
    assert.equal(check.code, 0, check.out);

    const listed = (await run(['list', '--config', ws.config, '--json'])).json.backups[0];
    const m = metrics();
    assert.equal(m.get(`snapagent_last_success_timestamp_seconds{${L}}`), Date.parse(listed.finished_at) / 1000);
    assert.equal(m.get(`snapagent_last_attempt_timestamp_seconds{${L}}`), Date.parse(result.started_at) / 1000);
    assert.equal(m.get(`snapagent_last_status{${L}}`), 1);
    assert.equal(m.get(`snapagent_last_duration_seconds{${L}}`), result.duration_seconds);
    assert.equal(m.get(`snapagent_last_size_bytes{${L}}`), listed.size);
    assert.equal(m.get(`snapagent_expected_interval_seconds{${L}}`), 3600);
    assert.equal(m.get('snapagent_backups{job="obs",target="local"}'), 1);
    assert.equal(m.get('snapagent_target_up{target="local"}'), 1);
    assert.equal(m.has(`snapagent_previous_size_bytes{${L}}`), false, 'no previous backup yet');

    const [hook] = await sink.waitFor(1);
    const event = JSON.parse(hook!.body);
    const runId = logLines(b)[0]!.run;
    assert.deepEqual(
      { status: event.status, job: event.job, id: event.id, size: event.size, run: event.run, format: event.format },
      { status: 'ok', job: 'obs', id: result.id, size: listed.size, run: runId, format: 'snapagent.event/1' },
    );
    assert.match(event.text, new RegExp(`backup of obs ok \\(${result.id}`));
    const viaCommand = readFileSync(eventsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(viaCommand, [event]);
    // the webhook URL is a secret: nowhere in outputs, logs, metrics or state
    const outputs = { stdout: b.stdout, stderr: b.stderr, metrics: readFileSync(metricsFile, 'utf8') };
    assert.deepEqual(leaksIn(outputs, { 'webhook URL': sink.url, 'its token': 'secret-token' }, { dirs: [path.join(ws.state, 'runs')] }), []);

    await docker('volume', 'rm', vol);
    await restoresIdentical(ws.config, 'obs', vol, original, { inPlace: true, env });
  });

  it('status: exit 0 while fresh (also an hour later), exit 1 once older than 1.5 × the hourly interval', async () => {
    const now = await run(['status', '--config', ws.config, '--json']);
    assert.equal(now.code, 0, now.stdout + now.stderr);
    const job = now.json.jobs[0];
    assert.equal(job.job, 'obs');
    assert.equal(job.status, 'ok');
    assert.equal(job.expected_interval_seconds, 3600);
    assert.ok(Date.parse(job.next_run) > Date.parse(now.json.now), job.next_run);
    assert.ok(job.last_success_age_seconds < 600);

    const later = await run(['status', '--config', ws.config, '--json'], fakeClockAhead(3600));
    assert.equal(later.code, 0, later.stdout + later.stderr);
    assert.ok(Date.parse(later.json.now) - Date.parse(now.json.now) >= 3600_000, 'faketime moved the clock');
    assert.equal(later.json.jobs[0].status, 'ok');

    const stale = await run(['status', '--config', ws.config, '--json'], fakeClockAhead(2 * 3600));
    assert.equal(stale.code, 1, stale.stdout + stale.stderr);
    assert.equal(stale.json.ok, false);
    assert.equal(stale.json.jobs[0].status, 'stale');
    assert.match(stale.json.jobs[0].reason, /more than 1\.5 × the tier's interval/);

    const human = await run(['status', '--config', ws.config], fakeClockAhead(2 * 3600));
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^JOB\s+TIER\s+LAST OK\s+RESTORABLE TO\s+STATUS\s+SIZE\s+NEXT RUN\n/);
    // a job without pitr is restorable to its newest backup's start
    assert.match(human.stdout, /^obs\s+hourly\s+2h0\dm ago\s+2h0\dm ago\s+stale\s+/m);
    assert.ok(stale.json.jobs[0].recovery_point_age_seconds >= 2 * 3600, JSON.stringify(stale.json.jobs[0]));
  });

  it('a failed run keeps the last success in the metrics, makes status exit 1 with the error, and notifies; the next good run recovers', async () => {
    const before = metrics();
    await docker('volume', 'rm', vol);
    const b = await backup();
    assert.equal(b.code, 1, b.stderr);
    const m = metrics();
    assert.equal(m.get(`snapagent_last_success_timestamp_seconds{${L}}`), before.get(`snapagent_last_success_timestamp_seconds{${L}}`));
    assert.equal(m.get(`snapagent_last_size_bytes{${L}}`), before.get(`snapagent_last_size_bytes{${L}}`));
    assert.equal(m.get(`snapagent_last_status{${L}}`), 0);
    assert.ok(m.get(`snapagent_last_attempt_timestamp_seconds{${L}}`)! > before.get(`snapagent_last_attempt_timestamp_seconds{${L}}`)!);
    assert.equal(m.get('snapagent_backups{job="obs",target="local"}'), 1);
    assert.equal((await promtool(['check', 'metrics'], readFileSync(metricsFile, 'utf8'))).code, 0);

    const s = await run(['status', '--config', ws.config, '--json']);
    assert.equal(s.code, 1, s.stdout);
    assert.equal(s.json.jobs[0].status, 'failed');
    assert.match(s.json.jobs[0].last_error, new RegExp(`volume "${vol}" does not exist`));
    assert.equal(s.json.jobs[0].failures_in_a_row, 1);

    const hooks = await sink.waitFor(2);
    const failed = JSON.parse(hooks[1]!.body);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error, /does not exist/);
    assert.match(failed.text, /backup of obs FAILED/);

    // the volume comes back from its backup; the next run succeeds and status is fresh again
    await restoresIdentical(ws.config, 'obs', vol, original, { inPlace: true, env });
    assert.equal((await backup()).code, 0);
    const after = metrics();
    assert.equal(after.get(`snapagent_last_status{${L}}`), 1);
    assert.equal(after.get('snapagent_backups{job="obs",target="local"}'), 2);
    assert.equal(after.get(`snapagent_previous_size_bytes{${L}}`), before.get(`snapagent_last_size_bytes{${L}}`));
    const fresh = await run(['status', '--config', ws.config, '--json']);
    assert.equal(fresh.code, 0, fresh.stdout);
    assert.equal(fresh.json.jobs[0].failures_in_a_row, 0);
  });

  it('undeliverable notifications (closed port, failing command) are warnings: the backup still succeeds', async () => {
    const w = config({
      jobs: [volumeJob('quiet', vol)],
      notifications: { on: ['success'], timeout_seconds: 5, webhook: { url: 'http://127.0.0.1:9/hook' }, command: ['sh', '-c', 'echo oops >&2; exit 3'] },
    });
    try {
      const b = await snapagent(['backup', '--config', w.config, '--json']);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.json.results[0].status, 'ok');
      const warnings = logLines(b).filter((l) => l.level === 40 && /notification not delivered/.test(l.msg));
      assert.equal(warnings.length, 2, b.stderr);
      assert.ok(warnings.some((w) => /exited with code 3: oops/.test(w.msg)));
      await restoresIdentical(w.config, 'quiet', copy, original);
    } finally {
      w.cleanup();
    }
  });

  it('every log line is JSON carrying the run id, including the plugin and Docker client lines', async () => {
    await removeVolume(copy);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'obs', '--to-volume', copy], { SNAPAGENT_LOG_LEVEL: 'debug' });
    assert.equal(r.code, 0, r.stderr);
    const lines = logLines(r);
    const ids = new Set(lines.map((l) => l.run));
    assert.equal(ids.size, 1, `one run id: ${[...ids].join(', ')}`);
    assert.match([...ids][0]!, /^[0-9a-f]{8}$/);
    assert.ok(lines.some((l) => l.msg === 'created volume'), 'the plugin logs through the same logger');
    assert.ok(lines.some((l) => /helper container/.test(l.msg)), 'the Docker client logs too');
    assert.deepEqual(await snapshot(copy), original);
    assert.ok(existsSync(metricsFile));
  });
});

