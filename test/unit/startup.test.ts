// What a command loads: `snapagent plan` with no jobs loads none of the datastore
// drivers nor dockerode (they load with the first job of their plugin, or the first
// Docker call), seen by a module-load probe in the spawned CLI, never by timing. And the
// compile cache's directory: the default state dir's compile-cache, only when that is
// the agent's own; anything else leaves the cache off without failing the command.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { compileCacheDir, enableCompileCache } from '../../bin/compile-cache.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const base = mkdtempSync(path.join(tmpdir(), 'snapagent-startup-'));
after(() => rmSync(base, { recursive: true, force: true }));

// Records every module file Node loads (import and require alike), written at exit.
const PROBE = `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = new Set();
registerHooks({ load(url, context, next) { seen.add(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.PROBE_OUT, [...seen].join('\\n')));
`;

const DRIVERS = ['mongodb', 'cassandra-driver', '@elastic/elasticsearch', 'mysql2'];

function loadedPackages(urls: string[]): Set<string> {
  const out = new Set<string>();
  for (const u of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (m) out.add(m[1]!);
  }
  return out;
}

describe('start-up: what `snapagent plan` loads', () => {
  it('with no jobs: no datastore driver, no dockerode', () => {
    const probe = path.join(base, 'probe.mjs');
    writeFileSync(probe, PROBE);
    const config = path.join(base, 'nojobs.yml');
    writeFileSync(config, `targets: [{ name: local, type: local, path: ${JSON.stringify(path.join(base, 'backups'))} }]\ndiscovery: { labels: false }\nstate_dir: ${JSON.stringify(path.join(base, 'state'))}\n`);
    const out = path.join(base, 'loaded.txt');
    const res = spawnSync(process.execPath, ['--import', probe, path.join(ROOT, 'bin/snapagent.js'), 'plan', '--json', '--config', config], {
      encoding: 'utf8',
      // no compile cache: a test writes nothing outside its own directory
      env: { ...process.env, PROBE_OUT: out, NODE_DISABLE_COMPILE_CACHE: '1', SNAPAGENT_LOG_FORMAT: 'json' },
    });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout).jobs, []);
    const loaded = loadedPackages(readFileSync(out, 'utf8').split('\n'));
    assert.ok(loaded.has('yaml') && loaded.has('zod'), `the probe sees packages (it saw ${[...loaded].join(', ')})`);
    for (const p of [...DRIVERS, 'dockerode', 'tar-stream', 'execa', 'node-cron']) assert.ok(!loaded.has(p), `${p} was loaded by plan with no jobs`);
  });
});

describe('start-up: the compile cache', () => {
  // As root the default state dir is /var/lib/snapagent whatever the environment: the
  // cases below then run as another user (uid 4242, owning the test's directories), for
  // real, so that modes and ownership count as they do for a non-root agent.
  const root = process.getuid!() === 0;
  const uid = root ? 4242 : process.getuid!();
  const as = root ? { uid, gid: uid } : {};
  if (root) chmodSync(base, 0o755);
  let n = 0;
  const home = () => {
    const h = path.join(base, `home${++n}`);
    mkdirSync(h, { mode: 0o755 });
    if (root) chownSync(h, uid, uid);
    return h;
  };
  const stateIn = (h: string) => path.join(h, '.local/state/snapagent');
  const makeState = (h: string, mode = 0o700) => {
    for (const d of [path.join(h, '.local'), path.join(h, '.local/state'), stateIn(h)]) {
      mkdirSync(d);
      if (root) chownSync(d, uid, uid);
      chmodSync(d, d === stateIn(h) ? mode : 0o700);
    }
  };
  // compileCacheDir as that user, with only HOME in the environment
  const dirFor = (h: string | undefined, asUid = uid): string | undefined => {
    const code = `import('${path.join(ROOT, 'bin/compile-cache.js')}').then((m) => process.stdout.write(JSON.stringify({ dir: m.compileCacheDir(process.env, ${asUid}) })))`;
    const res = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: h ? { HOME: h } : {}, ...as });
    assert.equal(res.status, 0, res.stderr);
    return (JSON.parse(res.stdout) as { dir?: string }).dir;
  };

  it('is compile-cache in the default state dir, made 0700 when missing', () => {
    const h = home();
    makeState(h);
    const dir = dirFor(h);
    assert.equal(dir, path.join(stateIn(h), 'compile-cache'));
    assert.equal(lstatSync(dir!).mode & 0o777, 0o700);
    assert.equal(dirFor(h), dir, 'an existing one is used again');
  });

  it('is none when the state dir does not exist yet (nothing is created), or there is no default', () => {
    const h = home();
    assert.equal(dirFor(h), undefined);
    assert.ok(!existsSync(path.join(h, '.local')));
    assert.equal(dirFor(undefined), undefined);
  });

  it("is none when the state dir is not the agent's own: writable by others, a link, someone else's", () => {
    const open = home();
    makeState(open, 0o777);
    assert.equal(dirFor(open), undefined);
    assert.ok(!existsSync(path.join(stateIn(open), 'compile-cache')));

    const linked = home();
    makeState(linked);
    const real = stateIn(linked) + '.real';
    rmSync(stateIn(linked), { recursive: true });
    mkdirSync(real, { mode: 0o700 });
    if (root) chownSync(real, uid, uid);
    symlinkSync(real, stateIn(linked));
    assert.equal(dirFor(linked), undefined);

    const theirs = home();
    makeState(theirs);
    assert.equal(dirFor(theirs, uid + 1), undefined);
  });

  it('is none when its place is taken by a file, or the state dir is read-only', () => {
    const taken = home();
    makeState(taken);
    writeFileSync(path.join(stateIn(taken), 'compile-cache'), '');
    assert.equal(dirFor(taken), undefined);
    const ro = home();
    makeState(ro, 0o500);
    assert.equal(dirFor(ro), undefined);
  });

  it('the CLI fills it, and runs the same without one: state dir absent or read-only, the cache read-only', () => {
    const config = path.join(base, 'cache.yml');
    writeFileSync(config, `targets: [{ name: local, type: local, path: ${JSON.stringify(path.join(base, 'backups'))} }]\ndiscovery: { labels: false }\n`);
    chmodSync(config, 0o644);
    const plan = (h: string) => {
      const env: NodeJS.ProcessEnv = { HOME: h, PATH: process.env.PATH, SNAPAGENT_LOG_FORMAT: 'json' };
      const res = spawnSync(process.execPath, [path.join(ROOT, 'bin/snapagent.js'), 'plan', '--json', '--config', config], { encoding: 'utf8', env, ...as });
      assert.equal(res.status, 0, res.stderr);
      assert.deepEqual(JSON.parse(res.stdout).jobs, []);
    };
    const cached = (h: string) => readdirSync(path.join(stateIn(h), 'compile-cache'), { recursive: true }).length;

    const absent = home();
    plan(absent); // the command makes its state dir; the cache starts with the next run
    plan(absent);
    assert.ok(cached(absent) > 50, `compiled modules are cached (${cached(absent)} entries)`);
    plan(absent); // and read back

    const ro = home();
    makeState(ro, 0o500);
    plan(ro);
    assert.ok(!existsSync(path.join(stateIn(ro), 'compile-cache')));

    const roCache = home();
    makeState(roCache);
    plan(roCache);
    plan(roCache);
    const dir = path.join(stateIn(roCache), 'compile-cache');
    for (const d of [dir, ...readdirSync(dir).map((e) => path.join(dir, e))]) chmodSync(d, 0o500);
    plan(roCache);
  });

  it("turning it on never throws, and leaves Node's own settings alone", () => {
    assert.doesNotThrow(() => enableCompileCache({ NODE_DISABLE_COMPILE_CACHE: '1' }));
    assert.doesNotThrow(() => enableCompileCache({ NODE_COMPILE_CACHE: path.join(base, 'elsewhere') }));
    assert.ok(!existsSync(path.join(base, 'elsewhere')), 'Node reads $NODE_COMPILE_CACHE at its own start, not here');
  });
});
