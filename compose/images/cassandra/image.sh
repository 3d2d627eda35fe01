# Sourced by compose/images/build.sh: defines build_cassandra, the test image
# snapagent-test/cassandra:latest (see Dockerfile). Cassandra is not in Debian: its jars
# come from Maven Central (cassandra-all + runtime dependencies, resolved by Maven from
# pom.xml with strict checksum checks) into $cache/cassandra-<version>/ (m2/: Maven's
# repo, lib/: the jars), so a rebuild needs no network. The jars are hard-linked into a
# temporary build context, never into this folder.

build_cassandra() {
  local version=5.0.9 tag=snapagent-test/cassandra:latest base=snapagent/debian:bookworm
  local src=$here/cassandra store=$cache/cassandra-5.0.9 hash ctx rc=0
  # The version is pinned here and nowhere else; the hash covers this file.
  hash=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  [ "$(current_hash "$tag")" = "$hash" ] && { log "$tag up to date"; return; }

  if [ ! -e "$store/lib/.complete" ]; then
    command -v mvn >/dev/null || { log "mvn (Maven) is needed to fetch Cassandra's jars"; return 1; }
    log "resolving org.apache.cassandra:cassandra-all:$version and its runtime jars (Maven Central, cached in $store)"
    mkdir -p "$store"
    rm -rf "$store/lib" "$store/lib.tmp"
    cp "$src/pom.xml" "$store/pom.xml"
    # -C: fail on a checksum mismatch (Maven Central's .sha1 files)
    mvn -B -q -C -f "$store/pom.xml" -Dcassandra.version="$version" -Dmaven.repo.local="$store/m2" \
      org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$store/lib.tmp" >&2
    # natives for other systems (macOS, Windows) are dead weight in a Linux image
    rm -f "$store/lib.tmp"/*-osx-*.jar "$store/lib.tmp"/*-windows-*.jar
    [ -e "$store/lib.tmp/cassandra-all-$version.jar" ] || { log "cassandra-all-$version.jar was not resolved"; return 1; }
    touch "$store/lib.tmp/.complete"
    mv "$store/lib.tmp" "$store/lib"
  fi

  log "building $tag (Cassandra $version)"
  ctx=$(mktemp -d "$cache/cassandra-context.XXXXXX")
  cp -a "$src/." "$ctx/"
  cp -al "$store/lib" "$ctx/lib" 2>/dev/null || cp -a "$store/lib" "$ctx/lib"
  rm -f "$ctx/lib/.complete"
  # pip in the image must trust what the host trusts (a TLS-intercepting egress proxy)
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/build-ca.crt" 2>/dev/null || : >"$ctx/build-ca.crt"
  docker build --network host --build-arg "CASSANDRA_VERSION=$version" \
    --label "snapagent.build-hash=$hash" -t "$tag" "$ctx" >&2 || rc=$?
  rm -rf "$ctx"
  return $rc
}
