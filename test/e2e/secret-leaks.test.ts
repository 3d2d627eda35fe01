// No secret leaves the agent: a MariaDB password with a quote, a backslash and a
// non-ASCII letter, an age identity, an rclone credential given in RCLONE_CONFIG_* env (an
// SFTP key, inline PEM) and a webhook URL with tokens. backup, list, status, verify and
// restore run with all of them; stdout, stderr, the --json documents, every file on the
// target and in the state dir, the metrics file, the webhook's requests and every process's
// command line (sampled every 100 ms) hold none of them, raw, JSON-escaped or URL-encoded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ageKey, type AgeKey } from '../helpers/age.ts';
import { config, containerJob, type ConfigWorkspace } from '../helpers/config.ts';
import { requireDocker, snapagent, uniq, type CliResult } from '../helpers/harness.ts';
import { httpSink, type HttpSink } from '../helpers/http-sink.ts';
import { LeakScan } from '../helpers/leak-scan.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { startSftpServer, type SftpServer } from '../helpers/sftp-server.ts';

describe('secret-leak scan: backup, list, status, verify, restore', () => {
  const PASSWORD = `Pw"q\\x€-${uniq('s')}`;
  const TOKEN = `tök"en\\${uniq('t')}`;
  const job = uniq('leakdb');
  let db: MariaDb;
  let sftp: SftpServer;
  let sink: HttpSink;
  let ws: ConfigWorkspace;
  let key: AgeKey;
  let env: Record<string, string>;
  let secrets: Record<string, string>;
  let scan: LeakScan;
  const results: Record<string, CliResult> = {};

  before(async () => {
    await requireDocker(MARIADB_IMAGE);
    db = await startMariaDb(PASSWORD);
    await db.sql('CREATE DATABASE shop; USE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO shop.t SELECT seq, MD5(seq) FROM seq_1_to_2000;');
    sftp = await startSftpServer();
    sink = await httpSink();
    ws = config();
    key = await ageKey(ws.dir);
    // the SFTP client key inline in the environment (rclone's key_pem: one line, "\n" for
    // line ends) instead of the helper's key file: a credential only the env holds
    const sftpEnv = sftp.env('leaks');
    const pem = readFileSync(sftpEnv.RCLONE_CONFIG_LEAKS_KEY_FILE!, 'utf8');
    delete sftpEnv.RCLONE_CONFIG_LEAKS_KEY_FILE;
    const url = `${sink.url}?t=${encodeURIComponent(TOKEN)}`;
    env = { ...sftpEnv, RCLONE_CONFIG_LEAKS_KEY_PEM: pem.trim().split('\n').join('\\n'), SNAP_TEST_DB_PW: PASSWORD, SNAP_TEST_WEBHOOK: url };
    const pemBody = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    secrets = {
      'database password': PASSWORD,
      'age identity': key.secret,
      'rclone key_pem (env)': env.RCLONE_CONFIG_LEAKS_KEY_PEM!,
      'rclone key (its first base64 line)': pemBody.slice(0, 60),
      'webhook URL': url,
      'webhook path token': new URL(sink.url).pathname.split('/').pop()!,
      'webhook query token': TOKEN,
    };
    scan = new LeakScan(secrets);
    ws.rewrite({
      host: 'leak-host',
      targets: [{ name: 'offsite', type: 'rclone', remote: `leaks:${sftp.root}/snap` }],
      jobs: [containerJob(job, 'mariadb', db.name, { options: { password_env: 'SNAP_TEST_DB_PW' } })],
      metrics: { textfile_dir: path.join(ws.dir, 'metrics') },
      notifications: { on: ['failure', 'success'], webhook: { url_env: 'SNAP_TEST_WEBHOOK' } },
      encryption: { age_recipients: [key.recipient], age_identity_file: key.identity },
    });
  });

  after(async () => {
    await db?.remove();
    await sftp?.stop();
    await sink?.close();
    ws?.cleanup();
  });

  const run = (name: string, args: string[]) => scan.during(name, snapagent([...args, '--config', ws.config, '--json'], env)).then((r) => (results[name] = r));

  it('every command succeeds with the secrets in play', async () => {
    const b = await run('backup', ['backup']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.equal(b.json.results[0].status, 'ok');
    const l = await run('list', ['list']);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.json.backups.length, 1);
    assert.equal(l.json.backups[0].encryption, 'age');
    const s = await run('status', ['status']);
    assert.equal(s.code, 0, s.stdout + s.stderr);
    const v = await run('verify', ['verify']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    await db.sql('DROP DATABASE shop');
    const r = await run('restore', ['restore', '--job', job]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await db.sql('SELECT COUNT(*) FROM shop.t')).trim(), '2000');
    assert.equal((await sink.waitFor(1)).length >= 1, true, 'the webhook was called');
  });

  it('no secret, in any form, anywhere', () => {
    // the scanner itself finds each form it claims to
    const probe = new LeakScan({ password: PASSWORD });
    probe.scan('probe', `${JSON.stringify({ p: PASSWORD })} ${encodeURIComponent(PASSWORD)} ${PASSWORD}`);
    assert.deepEqual(probe.hits.map((h) => h.replace(/ in probe$/, '')).sort(), ['password (JSON-escaped)', 'password (URL-encoded)', 'password (raw)']);
    assert.ok(scan.psSamples >= 5, `the ps sampler ran (${scan.psSamples} samples)`);
    for (const [name, r] of Object.entries(results)) assert.ok(r.json, `${name} printed a JSON document`);
    const files = scan.scanDir(sftp.root) + scan.scanDir(ws.state) + scan.scanDir(path.join(ws.dir, 'metrics'));
    assert.ok(files >= 4, `the target, state and metrics hold files (${files})`);
    // the request goes to the URL (its path is the destination): its headers and body must not repeat it
    for (const req of sink.received) scan.scan('a webhook request', `${JSON.stringify(req.headers)}\n${req.body}`);
    assert.deepEqual(scan.hits, []);
  });
});
