// rclone targets must not carry credentials in the config: a connection-string remote
// (":s3,access_key_id=AK,secret_access_key=SK:bucket", "remote,password=…:path") or a
// flag ("--s3-secret-access-key SK") would put them on rclone's command line (visible to
// every user in `ps`), in logs and in error messages. Only the names of what was found are
// reported, never a value.

/** rclone parameter names that hold credentials (backend options, in any backend). */
const CREDENTIAL_PARAM = /pass|secret|key|token|credential|sas_url|cookie/i;
/** Flags that only name where a credential is, or ask for one: not secrets themselves. */
const NOT_A_SECRET_FLAG = /(-file|-path|-command|^--ask-password)$/;

/** The credential-like parameters a remote string carries inline ("user:password@" in a
 * URL counts as "password in a URL"); empty when it carries none. */
export function inlineRemoteCredentials(remote: string): string[] {
  const found = new Set<string>();
  if (/^:?[^:,]*,/.test(remote)) {
    for (const m of remote.matchAll(/,\s*([A-Za-z0-9_-]+)\s*=/g)) if (CREDENTIAL_PARAM.test(m[1]!)) found.add(m[1]!);
  }
  if (/:\/\/[^/\s@:]+:[^\s@]*@/.test(remote)) found.add('password in a URL');
  return [...found];
}

/** The credential-like flags among a target's extra rclone flags (names only). */
export function credentialFlags(flags: string[]): string[] {
  return flags
    .filter((f) => f.startsWith('-'))
    .map((f) => f.split('=')[0]!)
    .filter((f) => CREDENTIAL_PARAM.test(f.replaceAll('-', '_')) && !NOT_A_SECRET_FLAG.test(f));
}
