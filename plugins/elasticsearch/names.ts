// Index and data stream names read from a snapshot (the cluster's) or from a backup's
// manifest, checked before they are joined into a multi-target expression ("a,b"),
// where "," separates, "*"/"?" match, a leading "-" excludes and "_all" means everything
// (agent/plugin/names.ts says why). Elasticsearch's own rule: none of
// \ / * ? " < > | , # : or a space, no leading - _ +, not "." or "..", at most 255 bytes.
// Path parameters (repository, snapshot) are encoded by the client itself.
import { checkNames, type NameRule } from '../../agent/plugin/index.ts';

const rule: NameRule = (n) => {
  if (/[\\/*?"<>|,#: ]/.test(n)) return 'Elasticsearch allows none of \\ / * ? " < > | , # : or a space in an index name';
  if (/^[-_+]/.test(n)) return 'Elasticsearch allows no leading -, _ or + in an index name';
  if (n === '.' || n === '..') return 'it is not an index name';
  if (Buffer.byteLength(n) > 255) return 'it is longer than 255 bytes';
  return undefined;
};

export function checkIndexNames(names: readonly string[], where: string, restore = false): void {
  checkNames('index', names, where, {
    rules: [rule],
    hint: restore ? 'this backup was not written by an Elasticsearch cluster snapagent trusts: restore another backup' : 'rename it (reindex, or the _clone API), or leave it out with options.indices',
  });
}
