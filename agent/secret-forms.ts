// The forms a secret takes once written somewhere: raw, escaped in JSON (once, or twice
// when a JSON document is quoted in a log message), with non-ASCII as \uXXXX, and
// URL-encoded (path, query or form). Redaction replaces every one of them.

/** Names of options, parameters and variables that hold credentials. */
export const CREDENTIAL_NAME = /pass|secret|key|token|credential/i;

const jsonInner = (s: string) => JSON.stringify(s).slice(1, -1);
const asciiJson = (s: string) => jsonInner(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Every form of `secret` to redact, longest first (a longer form may contain a shorter). */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret, jsonInner(secret), jsonInner(jsonInner(secret)), asciiJson(secret), jsonInner(asciiJson(secret))]);
  try {
    forms.add(encodeURIComponent(secret));
    forms.add(encodeURI(secret));
    forms.add(new URLSearchParams({ s: secret }).toString().slice(2));
  } catch {
    // a lone surrogate cannot be URL-encoded: it cannot land in a URL either
  }
  return [...forms].sort((a, b) => b.length - a.length);
}
