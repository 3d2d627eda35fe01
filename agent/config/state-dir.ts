// Where the agent keeps its state (locks, named pipes, process records, run state), and
// the checks that make it trustworthy. The agent (often root) acts on what it finds
// there — kills recorded processes' containers, opens recorded pipes — so the directory
// must be its own: never a predictable shared path (no /tmp fallback), never a link,
// owned by the agent, writable by no one else, inside directories no one else can
// rename entries in.
import { constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, closeSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import { log } from '../log.ts';

/**
 * The default state dir: /var/lib/snapagent for root (systemd's StateDirectory, the
 * container's volume), else $XDG_STATE_HOME/snapagent or $HOME/.local/state/snapagent
 * (relative values are ignored, as the XDG spec says). Undefined when neither is set:
 * the caller asks for `state_dir` rather than guess a shared path.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv, uid: number | undefined): string | undefined {
  if (uid === 0) return '/var/lib/snapagent';
  const xdg = env.XDG_STATE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'snapagent');
  const home = env.HOME;
  if (home && path.isAbsolute(home)) return path.join(home, '.local/state/snapagent');
  return undefined;
}

const SET_IT = 'set state_dir in the config to a directory only this user can write';

/**
 * Makes `dir` ready for use by the user `uid`, or throws a ConfigError naming the path
 * and the fix. A missing dir is created 0700 (parents too). An existing one must be a
 * real directory owned by `uid` and writable by no one else; if others can read or enter
 * it, it is narrowed to 0700 (a new Docker volume is 0755; nothing can have been planted
 * in a directory only we can write, and run records must not be readable by others).
 * Every existing directory above it must be owned by root or `uid` and not writable by
 * others unless sticky (like /tmp): else someone could swap the whole state dir.
 */
export function prepareStateDir(dir: string, uid: number): void {
  checkAncestors(dir, uid);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError(`state dir ${dir}: cannot create it: ${(err as Error).message}`, `create it (mode 700, owned by uid ${uid}); or ${SET_IT}`);
  }
  let fd: number;
  try {
    // O_NOFOLLOW: the checks and the chmod below apply to this very directory, not to
    // whatever a link planted at its name points to.
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      const what = lstatSync(dir).isSymbolicLink() ? 'is a symbolic link' : 'is not a directory';
      throw new ConfigError(`state dir ${dir} ${what}: refusing to use it`, `point state_dir at a real directory (not a link or a file); or remove ${dir} (the agent creates the directory itself)`);
    }
    throw new ConfigError(`state dir ${dir}: cannot open it: ${(err as Error).message}`, `make it accessible to uid ${uid}; or ${SET_IT}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.uid !== uid) {
      throw new ConfigError(`state dir ${dir} is owned by uid ${st.uid}, not by this agent (uid ${uid}): refusing to use it`, `if it is yours: chown ${uid} ${dir} && chmod 700 ${dir}; else ${SET_IT}`);
    }
    if (st.mode & 0o022) {
      throw new ConfigError(`state dir ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): refusing to use it`, `chmod 700 ${dir} (and check what is in it); or ${SET_IT}`);
    }
    if (st.mode & 0o077) {
      fchmodSync(fd, st.mode & 0o7700);
      log.warn({ dir }, `state dir was readable by others (mode ${(st.mode & 0o7777).toString(8)}): narrowed to 0700`);
    }
  } finally {
    closeSync(fd);
  }
}

function checkAncestors(dir: string, uid: number): void {
  let parent = path.dirname(path.resolve(dir));
  // Parents still to be created will be ours, 0700: start at the first existing one.
  while (!exists(parent)) parent = path.dirname(parent);
  // Links above the state dir are the operator's (e.g. /var on another disk): check the
  // directories they lead to.
  for (let p = realpathSync(parent); ; p = path.dirname(p)) {
    const st = statSync(p);
    if (st.uid !== 0 && st.uid !== uid) {
      throw new ConfigError(`state dir ${dir}: ${p} above it is owned by uid ${st.uid}, who could replace the state dir: refusing to use it`, `move the state dir (set state_dir) below directories owned by root or uid ${uid}`);
    }
    const sticky = (st.mode & 0o1000) !== 0; // like /tmp: only an entry's owner may rename it
    if (st.mode & 0o022 && !sticky) {
      throw new ConfigError(`state dir ${dir}: ${p} above it is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}) without the sticky bit, so they could replace the state dir: refusing to use it`, `chmod go-w ${p}, or set state_dir to a directory below ones only root or uid ${uid} can write`);
    }
    if (p === path.dirname(p)) return;
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
