// The byte transport of the Docker client: bulk data into and out of containers, by
// exec streams (demultiplexed) and helper containers, through named pipes when the agent
// and dockerd share a filesystem, else through dockerd's attach connection; and the
// clean-up of the pipes a killed run left behind. The API wrapper is api.ts.
import type Docker from 'dockerode';
import { mkdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import { SnapError } from '../errors.ts';
import { log, runId } from '../log.ts';
import { NotADirBelow } from '../held-dir.ts';
import type { DockerCalls, HelperMount } from './api.ts';
import { containerPath, packFiles, singleFile, type HelperCollect, type HelperFile } from './archive.ts';
import { DockerDemux } from './demux.ts';
import { containerTmp, makeFifo, openDir, removeFifoDirs, UnsafePathError, type Fifo } from './fifo.ts';

export interface HelperSpec {
  image: string;
  cmd: string[];
  mounts: HelperMount[];
  /** The bulk data the command writes ("out": the run's `stdout`) or reads ("in": the
   * run's `stdin`), at the path in $SNAPAGENT_DATA ("-" when it is stdin/stdout). */
  data?: 'out' | 'in';
  /** What the helper is for, for logs and the container name. */
  purpose: string;
  /** Small files (an index the command reads) put into the helper's own filesystem
   * before it starts, through the Docker API: keep them out of the mounted volumes. */
  files?: HelperFile[];
  /** A regular file of the helper's own filesystem read back through the Docker API
   * after the command exited, into the result's `collected`. */
  collect?: HelperCollect;
}

export interface HelperResult {
  exitCode: number;
  stderr: string;
  /** Spec `collect`: the file's content; undefined when the command left no such path. */
  collected?: Buffer;
}

export interface HelperRun {
  readonly id: string;
  /** The command's output: its bulk data for data "out", else its stdout. */
  readonly stdout: Readable;
  /** The command's input for data "in". */
  readonly stdin?: Writable;
  /** Transfer "fifo" only: opens our end of the named pipe (read end for "out", write
   * end for "in") so that another process (zstd) can use it directly. Use either this
   * or stdout/stdin, not both. */
  readonly openPipe?: () => Promise<FileHandle>;
  /** Settles when the container has exited and been removed. */
  readonly done: Promise<HelperResult>;
  /** Kills and removes the container (idempotent). */
  kill(): Promise<void>;
}

/** How bulk data crosses into and out of helper containers:
 * - "fifo": a named pipe in a host directory bind-mounted into the helper; the bytes
 *   never pass through dockerd (3x faster on 2 cores). Needs the agent and dockerd to
 *   see the same filesystem path (an agent in a container bind-mounts its state dir).
 * - "attach": the container's stdin/stdout through the Docker API; works everywhere. */
export type Transfer = 'fifo' | 'attach';

export interface TransportOptions {
  transfer: Transfer;
  /** Host directory for the named pipes (transfer "fifo"). */
  pipeDir: string;
}

export interface ExecSpec {
  cmd: string[];
  /** Attach stdin: the run has a writable `stdin` (end it to send EOF). */
  stdin?: boolean;
  user?: string;
  /** Which stream carries the bulk data. With transfer "fifo", and when the agent can
   * reach the container's filesystem (/proc/<pid>/root: same host, root, the exec user
   * is root), that stream goes through a named pipe in the container's /tmp instead of
   * dockerd's attach connection (about 2.5x the throughput on 2 cores); the process
   * sees a plain redirection, so nothing changes for the command. */
  bulk?: 'stdout' | 'stdin';
}

export interface ExecRun {
  readonly stdout: Readable;
  readonly stdin?: Writable;
  /** Settles when the process has exited and its output drained. */
  readonly done: Promise<HelperResult>;
  /** Closes the connection: the process gets EOF/EPIPE on its streams. */
  kill(): void;
  /** Bulk data through a named pipe: opens the pipe's read end (bulk "stdout") for a
   * consumer that reads it directly (e.g. zstd), instead of `stdout`; or its write end
   * (bulk "stdin") for a producer that writes it directly (zstd -d), instead of `stdin`.
   * Use one of the two. */
  readonly openPipe?: () => Promise<FileHandle>;
}

export interface DockerTransport {
  /** Runs a command inside a running container, streaming its stdin/stdout. */
  exec(container: string, spec: ExecSpec): Promise<ExecRun>;
  runHelper(spec: HelperSpec): Promise<HelperRun>;
  /** Removes what the agent left in a running container's /tmp (named pipes of exec
   * transfers) whose name starts with `prefix`; nothing when out of reach (see ExecSpec). */
  removeTempFiles(ref: string, prefix: string): Promise<void>;
}

let helperSeq = 0;

export function dockerTransport(docker: Docker, { wrap, lookup }: DockerCalls, o: TransportOptions): DockerTransport {
  return {
    exec: (container, spec) => wrap(`exec in ${container}`, () => execIn(docker, container, spec, o)),

    runHelper: (spec) => wrap(`run helper (${spec.purpose})`, () => runHelper(docker, spec, o)),

    removeTempFiles: (ref, prefix) =>
      lookup(`inspect container ${ref}`, async () => {
        const pid = (await docker.getContainer(ref).inspect()).State.Pid;
        const tmp = pid ? await containerTmp(pid) : undefined;
        if (!tmp) return;
        try {
          await removeFifoDirs(tmp, (n) => n.startsWith(prefix));
        } finally {
          await tmp.close();
        }
      }, undefined),
  };
}

async function execIn(docker: Docker, container: string, spec: ExecSpec, o: TransportOptions): Promise<ExecRun> {
  const fifo = spec.bulk && o.transfer === 'fifo' ? await execFifo(docker, container, spec) : undefined;
  // The shell opens the pipe (blocking until we open our end), then becomes the tool.
  const cmd = fifo ? ['sh', '-c', `p=$1; shift; exec "$@" ${spec.bulk === 'stdout' ? '>' : '<'}"$p"`, 'snapagent-pipe', fifo.inside, ...spec.cmd] : spec.cmd;
  const attachStdin = (spec.stdin ?? false) && !(fifo && spec.bulk === 'stdin');
  let stream: Duplex;
  let exec: Docker.Exec;
  try {
    exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: attachStdin, User: spec.user });
    stream = (await exec.start({ hijack: true, stdin: attachStdin })) as Duplex;
  } catch (err) {
    await fifo?.pipe.cleanup();
    throw err;
  }
  const demux = new DockerDemux();
  stream.pipe(demux);
  stream.on('close', () => demux.writableEnded || demux.end());
  log.debug({ container, cmd: spec.cmd[0], transfer: fifo ? 'fifo' : 'attach' }, 'exec started');
  const done = (async (): Promise<HelperResult> => {
    try {
      await demux.drained();
      let info = await exec.inspect();
      for (let i = 0; info.Running && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        info = await exec.inspect();
      }
      log.debug({ container, exitCode: info.ExitCode }, 'exec exited');
      return { exitCode: info.ExitCode ?? -1, stderr: demux.stderr() };
    } finally {
      await fifo?.pipe.release();
      await fifo?.pipe.cleanup();
    }
  })();
  done.catch(() => undefined);
  if (!fifo) return { stdout: demux, stdin: spec.stdin ? stream : undefined, done, kill: () => void stream.destroy() };
  // Killing also opens the pipe's other end, so that a process still blocked opening
  // its end goes on (and meets EOF or EPIPE) instead of waiting forever.
  const kill = () => {
    stream.destroy();
    void fifo.pipe.release();
  };
  let out: Readable | undefined;
  let inp: Writable | undefined;
  if (spec.bulk === 'stdout') {
    demux.resume();
    return { get stdout() { return (out ??= fifo.pipe.reader()); }, openPipe: () => fifo.pipe.open('r'), done, kill };
  }
  return { stdout: demux, get stdin() { return (inp ??= fifo.pipe.writer()); }, openPipe: () => fifo.pipe.open('w'), done, kill };
}

// A named pipe in the container's /tmp, made from the host through /proc/<pid>/root
// without ever following a path the container controls (fifo.ts). Undefined (use
// attach) when that is out of reach: another host's dockerd, no permission, a missing
// or symlinked /tmp, or an exec user other than root (the pipe is root's, mode 0600).
async function execFifo(docker: Docker, container: string, spec: ExecSpec): Promise<{ pipe: Fifo; inside: string } | undefined> {
  try {
    const c = await docker.getContainer(container).inspect();
    const user = spec.user ?? c.Config.User ?? '';
    if (!['', 'root', '0', '0:0', 'root:root'].includes(user) || !c.State.Pid) return undefined;
    const tmp = await containerTmp(c.State.Pid);
    if (!tmp) return undefined;
    const pipe = await makeFifo(tmp, `snapagent-${runId}`); // the run id: a killed run's are found
    return { pipe, inside: `/tmp/${pipe.dirName}/data` };
  } catch (err) {
    const level = err instanceof UnsafePathError || err instanceof NotADirBelow ? 'warn' : 'debug';
    log[level]({ container, err: String(err) }, 'exec: no named pipe into the container, using the attach stream');
    return undefined;
  }
}

async function runHelper(docker: Docker, spec: HelperSpec, o: TransportOptions): Promise<HelperRun> {
  for (const p of [...(spec.files ?? []).map((f) => f.path), ...(spec.collect ? [spec.collect.path] : [])]) containerPath(p);
  const name = `snapagent-${spec.purpose}-${runId}-${++helperSeq}`;
  const fifo = spec.data && o.transfer === 'fifo' ? await hostFifo(o.pipeDir, name) : undefined;
  const attachStdin = spec.data === 'in' && !fifo;
  let container: Docker.Container;
  try {
    container = await docker.createContainer({
      name,
      Image: spec.image,
      Cmd: spec.cmd,
      User: '0:0',
      Env: [`SNAPAGENT_DATA=${fifo ? `${FIFO_MOUNT}/data` : '-'}`],
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: attachStdin,
      OpenStdin: attachStdin,
      StdinOnce: attachStdin,
      Tty: false,
      Labels: { 'snapagent.helper': spec.purpose, 'snapagent.run': runId },
      HostConfig: {
        NetworkMode: 'none',
        // The default json-file log driver would record the whole data stream (about 4x
        // its size, JSON-escaped) under /var/lib/docker: 11x slower and gigabytes of disk.
        LogConfig: { Type: 'none', Config: {} },
        Mounts: [
          ...spec.mounts.map((m) => ({ Type: 'volume' as const, Source: m.volume, Target: m.target, ReadOnly: m.readOnly })),
          ...(fifo ? [{ Type: 'bind' as const, Source: fifo.dir, Target: FIFO_MOUNT, ReadOnly: false }] : []),
        ],
      },
    });
  } catch (err) {
    await fifo?.cleanup();
    throw err;
  }
  const id = container.id;
  log.debug({ container: id.slice(0, 12), purpose: spec.purpose, transfer: fifo ? 'fifo' : 'attach' }, 'helper container created');
  let removed = false;
  let stream: Duplex | undefined;
  const remove = async () => {
    if (removed) return;
    removed = true;
    // dockerd keeps a hijacked attach connection open until the client closes it
    stream?.destroy();
    await container.remove({ force: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) log.warn({ container: id.slice(0, 12), err: String(err) }, 'could not remove helper container');
    });
    await fifo?.release();
  };
  try {
    // a created container's filesystem takes an archive before its command runs
    if (spec.files?.length) await container.putArchive(await packFiles(spec.files), { path: '/' });
    stream = (await container.attach({ stream: true, stdout: true, stderr: true, stdin: attachStdin, hijack: true })) as Duplex;
    const demux = new DockerDemux();
    stream.pipe(demux);
    stream.on('close', () => demux.writableEnded || demux.end());
    // next-exit: a container that is created but not started yet counts as "not running".
    const exited = container.wait({ condition: 'next-exit' });
    await container.start();
    log.debug({ container: id.slice(0, 12) }, 'helper container started');
    const done = (async (): Promise<HelperResult> => {
      try {
        const res = (await exited) as { StatusCode: number };
        log.debug({ container: id.slice(0, 12), exitCode: res.StatusCode }, 'helper container exited');
        await fifo?.release();
        // Wait for the output to drain before reporting, so stderr is complete.
        await demux.drained(5000);
        // an exited container keeps its filesystem until it is removed (finally below)
        const collected = spec.collect ? await collectFile(container, spec.purpose, spec.collect) : undefined;
        return { exitCode: res.StatusCode, stderr: demux.stderr(), ...(collected ? { collected } : {}) };
      } finally {
        await remove();
        await fifo?.cleanup();
      }
    })();
    done.catch(() => undefined);
    if (!fifo) return { id, stdout: demux, stdin: attachStdin ? stream : undefined, done, kill: remove };
    demux.resume();
    // The pipe's streams open lazily: opening one end blocks until the other end opens.
    let out: Readable | undefined;
    let inp: Writable | undefined;
    const openPipe = () => fifo.open(spec.data === 'out' ? 'r' : 'w');
    return spec.data === 'out'
      ? { id, get stdout() { return (out ??= fifo.reader()); }, openPipe, done, kill: remove }
      : { id, stdout: demux, get stdin() { return (inp ??= fifo.writer()); }, openPipe, done, kill: remove };
  } catch (err) {
    await remove();
    await fifo?.cleanup();
    throw err;
  }
}

const FIFO_MOUNT = '/snapagent/pipe';

async function collectFile(container: Docker.Container, purpose: string, c: HelperCollect): Promise<Buffer | undefined> {
  let src: Readable;
  try {
    src = (await container.getArchive({ path: c.path })) as Readable;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw new SnapError(`helper ${purpose}: could not read ${c.path} back: ${String(err)}`, { cause: err });
  }
  try {
    return await singleFile(src, path.posix.basename(c.path), c.maxBytes);
  } catch (err) {
    throw new SnapError(`helper ${purpose}: ${c.path} was refused: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

// A named pipe in the agent's own pipe directory, for a bind mount into a helper (whose
// command may touch the pipe's directory: fifo.ts holds the pipe by inode).
async function hostFifo(pipeDir: string, name: string): Promise<Fifo & { dir: string }> {
  await mkdir(pipeDir, { recursive: true, mode: 0o700 });
  const pipe = await makeFifo(await openDir(pipeDir), name);
  return { ...pipe, dir: path.join(pipeDir, pipe.dirName) };
}
