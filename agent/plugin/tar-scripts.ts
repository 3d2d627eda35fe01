// Pieces shared by the plugins that ship a directory as a tar stream from a helper
// container (volume, elasticsearch): how the helper's stats line and tar's messages are
// read from its stderr.

/** The helper's "snapagent-stats k=v ..." line (and tar --totals' stream size) as
 * numbers; undefined when the helper printed none. */
export function parseStats(stderr: string): Record<string, number> | undefined {
  const line = stderr.split('\n').find((l) => l.startsWith('snapagent-stats '));
  if (!line) return undefined;
  const out: Record<string, number> = {};
  // tar --totals: the exact size of the archive stream
  const totals = /^Total bytes written: (\d+)/m.exec(stderr);
  if (totals) out.stream_bytes = Number(totals[1]);
  for (const kv of line.slice('snapagent-stats '.length).trim().split(/\s+/)) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** stderr without the stats line, for error messages. */
export function toolMessages(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('snapagent-') && !l.startsWith('Total bytes written'))
    .slice(-5)
    .join('; ');
}
