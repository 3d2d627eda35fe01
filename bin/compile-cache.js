// Node's compile cache for the CLI: the code V8 compiled (and the TypeScript Node
// stripped) on one run is reused by the next, which then starts in about half the time
// and never loads the TypeScript stripper. Plain JavaScript with node: imports only: the
// cache must be on before the first .ts module loads.
//
// The cache holds code the agent (often root) runs, so it lives where the state does:
// <default state dir>/compile-cache (agent/config/state-dir.ts: /var/lib/snapagent for
// root, else $XDG_STATE_HOME/snapagent or ~/.local/state/snapagent), and only when that
// directory exists and is trustworthy by the same rules as the state dir: the agent's
// own, writable by no one else, below directories no one else can rename entries in.
// Never a shared path like Node's default under /tmp. Anything unexpected (no state dir
// yet, read-only, someone else's) leaves the cache off; it never fails a command.
// $NODE_COMPILE_CACHE (a directory of your choice) and $NODE_DISABLE_COMPILE_CACHE=1
// are Node's own and win.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';

/** The default state dir, as agent/config/state-dir.ts defaultStateDir chooses it. */
function defaultStateDir(env, uid) {
  if (uid === 0) return '/var/lib/snapagent';
  const xdg = env.XDG_STATE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'snapagent');
  const home = env.HOME;
  if (home && path.isAbsolute(home)) return path.join(home, '.local/state/snapagent');
  return undefined;
}

// A real directory (not a link) owned by `uid` that no one else can write.
function ownDir(dir, uid) {
  const st = lstatSync(dir);
  return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
}

// Every directory above `dir` owned by root or `uid`, and writable by others only when
// sticky: no one else can swap the directories below.
function safeAbove(dir, uid) {
  for (let p = path.dirname(dir); ; p = path.dirname(p)) {
    const st = statSync(p);
    if (st.uid !== 0 && st.uid !== uid) return false;
    if (st.mode & 0o022 && !(st.mode & 0o1000)) return false; // 0o1000: sticky, like /tmp
    if (p === path.dirname(p)) return true;
  }
}

/** The compile cache directory for this user, made if missing; undefined when there is
 * no trustworthy one (see above). */
export function compileCacheDir(env = process.env, uid = process.getuid?.()) {
  if (uid === undefined) return undefined;
  const state = defaultStateDir(env, uid);
  if (!state) return undefined;
  try {
    if (!ownDir(state, uid) || !safeAbove(state, uid)) return undefined;
    const dir = path.join(state, 'compile-cache');
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if (err.code !== 'EEXIST') return undefined;
    }
    return ownDir(dir, uid) ? dir : undefined;
  } catch {
    return undefined; // absent, unreadable, read-only...
  }
}

/** Turns the cache on when there is a directory for it; never throws. */
export function enableCompileCache(env = process.env) {
  try {
    if (env.NODE_DISABLE_COMPILE_CACHE !== undefined || env.NODE_COMPILE_CACHE) return; // Node's own settings
    const dir = compileCacheDir(env);
    if (dir) module.enableCompileCache(dir);
  } catch {
    // an older Node without it, or the cache refused: start without it
  }
}
