// Redaction of registered secrets in every form they take once written (raw, escaped in
// JSON once or twice, \u-escaped, URL-encoded), in every place the agent writes: log lines,
// --json documents, run-state and process records; and credentials in volume driver options.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { output } from '../../agent/commands/common.ts';
import { redact, redactedJson, registerEnvSecrets, registerSecret } from '../../agent/log.ts';
import { recordRun } from '../../agent/observe/run-state.ts';
import { secretForms } from '../../agent/secret-forms.ts';
import { recordedDriverOptions, REDACTED } from '../../plugins/volume/driver-options.ts';

// a quote, a backslash, a newline, a non-ASCII letter and URL-special characters
const SECRET = 'pa"ss\\wörd\nline2&x=1 /y';
registerSecret(SECRET);

/** Every form a leak of `s` could take: the scan a test applies to anything written. */
const leaks = (text: string, s = SECRET) => secretForms(s).filter((f) => text.includes(f));

describe('redaction', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-redact-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('covers the raw, JSON-escaped (once and twice), \\u-escaped and URL-encoded forms', () => {
    const forms = secretForms(SECRET);
    assert.ok(forms.includes(JSON.stringify(SECRET).slice(1, -1)));
    assert.ok(forms.includes(encodeURIComponent(SECRET)));
    const texts = [
      SECRET,
      JSON.stringify({ error: `mariadb said: ${SECRET}` }),
      JSON.stringify({ msg: JSON.stringify({ password: SECRET }) }),
      JSON.stringify(SECRET).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
      `https://hooks.example/x?token=${encodeURIComponent(SECRET)}`,
      `https://hooks.example/${encodeURI(SECRET)}`,
      new URLSearchParams({ token: SECRET }).toString(),
    ];
    for (const t of texts) {
      const out = redact(t);
      assert.deepEqual(leaks(out), [], `leaked in ${out}`);
      assert.match(out, /\*\*\*/);
    }
  });

  it('keeps a JSON document valid', () => {
    const doc = { a: `x${SECRET}y`, b: [SECRET], c: { [SECRET]: 1 } };
    const text = redactedJson(doc);
    assert.deepEqual(JSON.parse(text), { a: 'x***y', b: ['***'], c: { '***': 1 } });
  });

  it('--json documents and human output on stdout', () => {
    const written: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stdout.write;
    try {
      output(true, { results: [{ error: `failed: ${SECRET}` }] }, () => '');
      output(false, {}, () => `error: ${SECRET}`);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(written.length, 2);
    for (const w of written) assert.deepEqual(leaks(w), []);
    assert.equal(JSON.parse(written[0]!).results[0].error, 'failed: ***');
  });

  it('run-state files', async () => {
    const now = new Date().toISOString();
    await recordRun(dir, 'h', { job: 'j', plugin: 'volume', tier: 'critical', status: 'failed', started_at: now, finished_at: now, duration_seconds: 1, targets: [{ target: 't', status: 'failed', error: `denied: ${SECRET}` }], error: `denied: ${SECRET}`, hint: SECRET }, 'run1', ['t']);
    const files = readdirSync(path.join(dir, 'runs'));
    assert.equal(files.length, 1);
    const text = readFileSync(path.join(dir, 'runs', files[0]!), 'utf8');
    assert.deepEqual(leaks(text), []);
    assert.equal(JSON.parse(text).last_error, 'denied: ***');
  });

  it('log lines (pino, in a child process), in messages and in fields', () => {
    const log = path.resolve(import.meta.dirname, '../../agent/log.ts');
    const code = `import { log, registerSecret } from ${JSON.stringify(log)}; const s = process.env.S; registerSecret(s); log.error({ detail: { nested: s } }, 'failed: ' + s + ' ' + JSON.stringify({ s }));`;
    const { stderr, status } = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, S: SECRET, SNAPAGENT_LOG_FORMAT: 'json' }, encoding: 'utf8' });
    assert.equal(status, 0, stderr);
    assert.deepEqual(leaks(stderr), []);
    assert.match(stderr, /failed: \*\*\*/);
  });

  it('registers rclone credentials from the environment, not paths or plain settings', () => {
    const env = { RCLONE_CONFIG_OFF_SECRET_ACCESS_KEY: 'sk-0123456789', RCLONE_CONFIG_OFF_PASS: 'obscured-pass', RCLONE_CONFIG_OFF_KEY_FILE: '/etc/keys/id', RCLONE_CONFIG_OFF_TYPE: 's3x', RCLONE_CONFIG_OFF_ENDPOINT: 'http://minio:9000' };
    registerEnvSecrets(env);
    assert.equal(redact('sk-0123456789 obscured-pass'), '*** ***');
    assert.equal(redact('/etc/keys/id http://minio:9000'), '/etc/keys/id http://minio:9000');
  });
});

describe('volume driver options in the manifest', () => {
  it('redacts credential-like options and credentials inside a mount option string, naming each', () => {
    const r = recordedDriverOptions({ type: 'cifs', device: '//nas/share', o: 'addr=10.0.0.5,username=u,password=Cifs"Pw\\1,vers=3.0', token: 'tok-abcdef', 'Secret-Key': 'zzzz1234' });
    assert.deepEqual(r.options, { type: 'cifs', device: '//nas/share', o: `addr=10.0.0.5,username=u,password=${REDACTED},vers=3.0`, token: REDACTED, 'Secret-Key': REDACTED });
    assert.deepEqual(r.redacted.sort(), ['Secret-Key', 'o.password', 'token']);
    // the values are also secrets for every log line
    assert.equal(redact('mount error: Cifs"Pw\\1 tok-abcdef'), 'mount error: *** ***');
  });

  it('covers pass=, passwd= and credentials= (a file path, still not recorded) and leaves other options', () => {
    const r = recordedDriverOptions({ o: 'addr=h,pass=p1p1p1,passwd=p2p2p2,credentials=/root/.smb,uid=1000,ro' });
    assert.equal(r.options.o, `addr=h,pass=${REDACTED},passwd=${REDACTED},credentials=${REDACTED},uid=1000,ro`);
    assert.deepEqual(recordedDriverOptions({ type: 'none', o: 'bind', device: '/srv/x' }), { options: { type: 'none', o: 'bind', device: '/srv/x' }, redacted: [] });
    assert.deepEqual(recordedDriverOptions(undefined), { options: {}, redacted: [] });
  });
});
