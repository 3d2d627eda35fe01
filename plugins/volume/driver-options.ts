// A volume's driver options as the manifest records them: credentials never leave the
// host. A credential-like option (`password`, `secret`, `key`, `token`, `credentials`...)
// and a credential inside a mount option string (CIFS `o: "addr=x,username=u,password=p"`)
// keep their name with the value `<redacted>`, so that a restore can tell the operator
// which value to supply. The values are also registered for log redaction.
import { CREDENTIAL_NAME, registerSecret } from '../../agent/plugin/index.ts';

/** The value written in place of a credential. */
export const REDACTED = '<redacted>';

export interface RecordedOptions {
  options: Record<string, string>;
  /** The options (or "o.password" for a part of a mount option string) that were redacted. */
  redacted: string[];
}

export function recordedDriverOptions(options: Record<string, string> | undefined): RecordedOptions {
  const out: Record<string, string> = {};
  const redacted: string[] = [];
  for (const [k, v] of Object.entries(options ?? {})) {
    if (CREDENTIAL_NAME.test(k)) {
      registerSecret(v);
      out[k] = REDACTED;
      redacted.push(k);
    } else if (v.includes('=')) {
      // mount options: comma-separated flags and name=value pairs
      out[k] = v
        .split(',')
        .map((part) => {
          const eq = part.indexOf('=');
          if (eq < 0 || !CREDENTIAL_NAME.test(part.slice(0, eq))) return part;
          registerSecret(part.slice(eq + 1));
          redacted.push(`${k}.${part.slice(0, eq).trim()}`);
          return `${part.slice(0, eq)}=${REDACTED}`;
        })
        .join(',');
    } else out[k] = v;
  }
  return { options: out, redacted };
}
