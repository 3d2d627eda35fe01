# Sourced by compose/images/build.sh: build_elasticsearch builds
# snapagent-test/elasticsearch:latest from Maven Central's integ-test zip of Elasticsearch
# (the server with only the transport-netty4, x-pack-core, x-pack-security and apm
# modules, no bundled JDK) and Debian's OpenJDK 17. The zip is checked against the
# SHA-512 pinned here (the one Maven Central publishes next to it) and cached in $cache;
# the build context is this folder plus a hard link to the cached zip, made in $cache.
ES_VERSION=8.19.21
ES_ZIP_SHA512=cf6b0a93860d329937ae7f913ec5073b0c726c77639764b93fc83a304aa1dd9d4defcfa2849948eea3b0b47c2065f994908603939fc2a4774c9c4d868c5ec1dd
ES_ZIP_URL=https://repo1.maven.org/maven2/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip

# The cached zip, downloaded and verified when missing or wrong.
elasticsearch_zip() {
  local zip=$cache/elasticsearch-integ-test-zip-$ES_VERSION.zip
  if [ -s "$zip" ] && echo "$ES_ZIP_SHA512  $zip" | sha512sum -c --status; then
    echo "$zip"; return
  fi
  log "downloading $ES_ZIP_URL"
  curl -fsSL --retry 3 -o "$zip.tmp" "$ES_ZIP_URL" >&2
  # the pinned sum, and the one Maven Central publishes (a typo in the pin shows here)
  local published
  published=$(curl -fsSL --retry 3 "$ES_ZIP_URL.sha512" | awk '{print $1}')
  if [ "$published" != "$ES_ZIP_SHA512" ] || ! echo "$ES_ZIP_SHA512  $zip.tmp" | sha512sum -c --status; then
    rm -f "$zip.tmp"
    log "checksum mismatch for $ES_ZIP_URL (pinned $ES_ZIP_SHA512, published $published)"
    return 1
  fi
  mv "$zip.tmp" "$zip"
  echo "$zip"
}

# The stand-in rest-root module (rest-root/: GET / and HEAD /, absent from the integ-test
# zip), compiled with the host's JDK 17 against the zip's lib/*.jar, into CTX/rest-root/.
elasticsearch_rest_root() {
  local zip=$1 ctx=$2 tmp
  command -v javac >/dev/null && command -v jar >/dev/null \
    || { log "javac and jar (JDK 17) are needed to build the elasticsearch image's rest-root module"; return 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && jar xf "$zip" "elasticsearch-$ES_VERSION/lib/") \
    && mkdir "$tmp/classes" \
    && javac --release 17 -nowarn -d "$tmp/classes" -cp "$tmp/elasticsearch-$ES_VERSION/lib/*" \
      "$ctx"/rest-root/src/snapagent/restroot/*.java >&2 \
    && jar cf "$ctx/rest-root/rest-root.jar" -C "$tmp/classes" . \
    && sed "s/@VERSION@/$ES_VERSION/g" "$ctx/rest-root/plugin-descriptor.properties.in" >"$ctx/rest-root/plugin-descriptor.properties" \
    || { rm -rf "$tmp"; log "building the rest-root module failed"; return 1; }
  rm -rf "$tmp"
}

build_elasticsearch() {
  local tag=snapagent-test/elasticsearch:latest base=snapagent/debian:bookworm dir=$here/elasticsearch hash
  # as build_dir: this folder's files (image.sh pins the version and checksum) + base id
  hash=$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  [ "$(current_hash "$tag")" = "$hash" ] && { log "$tag up to date"; return; }
  local zip ctx
  zip=$(elasticsearch_zip)
  ctx=$(mktemp -d "$cache/elasticsearch-context.XXXXXX")
  cp -a "$dir/." "$ctx/"
  ln "$zip" "$ctx/elasticsearch.zip" 2>/dev/null || cp "$zip" "$ctx/elasticsearch.zip"
  local rc=0
  elasticsearch_rest_root "$zip" "$ctx" || rc=$?
  [ $rc = 0 ] || { rm -rf "$ctx"; return $rc; }
  log "building $tag (Elasticsearch $ES_VERSION)"
  docker build --network host --build-arg "ES_VERSION=$ES_VERSION" \
    --label "snapagent.build-hash=$hash" -t "$tag" "$ctx" >&2 || rc=$?
  rm -rf "$ctx"
  return $rc
}
