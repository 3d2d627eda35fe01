# Sourced by compose/images/build.sh: defines build_mongo (both images below).
# TEST IMAGE snapagent-test/mongo:latest. No real mongod can be had here (no container
# registry, no MongoDB download site): FerretDB v1 with its SQLite backend speaks the
# MongoDB wire protocol, and the MongoDB Database Tools (mongodump, mongorestore,
# bsondump) are pure Go. All are built on the host from the Go module proxy
# (CGO_ENABLED=0), cached in $cache/mongo/<versions>/ and copied into the image from a
# temporary build context. The Go module and build caches live in $cache/go, so a
# rebuild after a change to this folder needs no network either.
# TEST IMAGE snapagent-test/mongo-rs:latest (replset/): the same image as a one-member
# replica set, the stand-in for MongoDB's oplog. Its FerretDB is built with one more
# files (test infrastructure): replset/msg_applyops.go, the `applyOps` subset that
# mongorestore --oplogReplay needs, and replset/oplog_{pushdown,index}.go, which read a
# ts range of the oplog through an index as mongod reads it, without a scan; cached
# under a key holding their hashes.

MONGO_FERRETDB_VERSION=v1.24.2
# Bump when mongo_patch_ferretdb changes (it is part of the binaries' cache key).
MONGO_FERRETDB_PATCH=p1
# sum.golang.org's entry for the FerretDB module zip (go mod download checks it).
MONGO_FERRETDB_COMMIT=cda72d440810406a208c4670aa7047f5bc8d528f
# mongo-tools tags (100.x.y) are not Go semver: the module proxy only knows pseudo
# versions, and sum.golang.org has none of them here. This commit is master of
# 2025-07-15 (CHANGELOG: 100.12.2 is the latest release); its module zip hash is pinned
# below and checked after download instead.
MONGO_TOOLS_MODULE=v0.0.0-20250715155915-887641268977
MONGO_TOOLS_SUM=h1:J9wFLko0N7sbovyHahuRw1NyfMUsNhaauLK87wQ3ruc=
MONGO_TOOLS_VERSION=100.12.2-post-887641268977

# mongo_go ARGS...: the host's Go, with the module and build caches under $cache/go.
mongo_go() {
  GOTOOLCHAIN=local GOFLAGS='-mod=mod -buildvcs=false' CGO_ENABLED=0 \
    GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" \
    nice /usr/local/go/bin/go "$@"
}

# mongo_module PATH VERSION [SUM]: downloads a module into $cache/go/mod and prints a
# writable copy's directory (the cache is read-only; the builds write generated files).
mongo_module() {
  local mod=$1 ver=$2 sum=${3:-} json dir got tmp
  if [ -n "$sum" ]; then
    json=$(GONOSUMDB=$mod mongo_go mod download -json "$mod@$ver")
  else
    json=$(mongo_go mod download -json "$mod@$ver")
  fi
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  got=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$json")
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "$json" >&2; log "download of $mod@$ver failed"; return 1; }
  if [ -n "$sum" ] && [ "$got" != "$sum" ]; then
    log "$mod@$ver: module hash $got, expected $sum"; return 1
  fi
  tmp=$(mktemp -d)
  cp -r "$dir/." "$tmp/" && chmod -R u+w "$tmp"
  echo "$tmp"
}

# One compatibility patch, so that mongorestore can restore indexes: it always sends
# "ns" in index specs (and "v" with --keepIndexVersion), which MongoDB accepts and
# ignores but FerretDB v1 refuses ("Index option "ns" is unknown"). Ignored here too.
mongo_patch_ferretdb() {
  local f=$1/internal/handler/msg_createindexes.go
  grep -q '^		case "background":$' "$f" || { log "FerretDB patch: pattern not found in $f"; return 1; }
  sed -i 's/^		case "background":$/		case "background", "ns", "v": \/\/ snapagent test image: ignored, as MongoDB does/' "$f"
}

# The replica-set stand-in's FerretDB: msg_applyops.go joins FerretDB's handler and
# `applyOps` joins its command table; oplog_index.go indexes the ts of capped tables,
# oplog_pushdown.go reads a ts range through that index (see the files), and a $natural
# sort is streamed from the backend's record-id order.
mongo_patch_ferretdb_replset() {
  local src=$1 cmds=$1/internal/handler/commands.go coll=$1/internal/backends/sqlite/collection.go
  local reg=$1/internal/backends/sqlite/metadata/registry.go find=$1/internal/handler/msg_find.go
  local insert='^	q = fmt.Sprintf("INSERT INTO %q (name, table_name, settings) VALUES (?, ?, ?)", metadataTableName)$'
  grep -q '^		"buildInfo": {$' "$cmds" || { log "FerretDB replset patch: pattern not found in $cmds"; return 1; }
  grep -q '^	q += whereClause$' "$coll" || { log "FerretDB replset patch: pattern not found in $coll"; return 1; }
  grep -q "$insert" "$reg" || { log "FerretDB replset patch: pattern not found in $reg"; return 1; }
  grep -q '^	iter, err := common.SortIterator(iter, closer, params.Sort)$' "$find" || { log "FerretDB replset patch: pattern not found in $find"; return 1; }
  cp "$here/mongo/replset/msg_applyops.go" "$src/internal/handler/msg_applyops.go"
  cp "$here/mongo/replset/oplog_pushdown.go" "$src/internal/backends/sqlite/oplog_pushdown.go"
  cp "$here/mongo/replset/oplog_index.go" "$src/internal/backends/sqlite/metadata/oplog_index.go"
  sed -i 's/^		"buildInfo": {$/		"applyOps": { \/\/ snapagent test stand-in (msg_applyops.go)\n			Handler: h.MsgApplyOps,\n			Help:    "Applies oplog entries (i, u, d and n only).",\n		},\n		"buildInfo": {/' "$cmds"
  sed -i 's/^	q += whereClause$/	if whereClause == "" \&\& meta.Capped() { \/\/ snapagent test stand-in (oplog_pushdown.go)\n		whereClause, args = snapagentOplogWhere(meta.TableName, params.Filter)\n	}\n	q += whereClause/' "$coll"
  # a $natural sort, which the backend already reads in (record id order), streamed
  # instead of read whole and sorted again: mongodump --oplog's "newest entry" query
  # ({$natural: -1}, limit 1) reads one row, as on mongod
  sed -i 's/^	iter, err := common.SortIterator(iter, closer, params.Sort)$/	sortDoc := params.Sort \/\/ snapagent test stand-in: a pushed-down $natural sort is not sorted again\n	if !h.DisablePushdown \&\& sortDoc.Len() == 1 \&\& sortDoc.Keys()[0] == "$natural" {\n		sortDoc = nil\n	}\n	iter, err := common.SortIterator(iter, closer, sortDoc)/' "$find"
  sed -i "s/$insert/	if params.Capped() { \/\/ snapagent test stand-in (oplog_index.go)\n		if _, err = db.ExecContext(ctx, snapagentTsIndex(tableName)); err != nil {\n			return false, lazyerrors.Error(err)\n		}\n	}\n\n&/" "$reg"
}

# mongo_ferretdb_replset OUT: the patched ferretdb binary in OUT/ (a minute at most: the
# Go build cache holds everything the first build compiled but the handler package).
mongo_ferretdb_replset() {
  local out=$1 src tmp=$1.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building FerretDB $MONGO_FERRETDB_VERSION with applyOps (replica-set stand-in)"
  src=$(mongo_module github.com/FerretDB/FerretDB "$MONGO_FERRETDB_VERSION") || return 1
  echo "$MONGO_FERRETDB_VERSION" >"$src/build/version/version.txt"
  echo "$MONGO_FERRETDB_COMMIT" >"$src/build/version/commit.txt"
  { mongo_patch_ferretdb "$src" && mongo_patch_ferretdb_replset "$src" \
    && (cd "$src" && mongo_go build -trimpath -ldflags='-s -w' -o "$tmp/ferretdb" ./cmd/ferretdb); } || { rm -rf "$src"; return 1; }
  rm -rf "$src"
  "$tmp/ferretdb" --version >&2 || return 1
  rm -rf "$out" && mv "$tmp" "$out"
}

mongo_binaries() {
  local out=$1 src tmp
  tmp=$out.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building FerretDB $MONGO_FERRETDB_VERSION (Go, a few minutes the first time)"
  src=$(mongo_module github.com/FerretDB/FerretDB "$MONGO_FERRETDB_VERSION") || return 1
  # `go install` alone panics at start ("Invalid build/version/version.txt"): the
  # version files are generated by upstream's task runner from git.
  echo "$MONGO_FERRETDB_VERSION" >"$src/build/version/version.txt"
  echo "$MONGO_FERRETDB_COMMIT" >"$src/build/version/commit.txt"
  mongo_patch_ferretdb "$src" || { rm -rf "$src"; return 1; }
  (cd "$src" && mongo_go build -trimpath -ldflags='-s -w' -o "$tmp/ferretdb" ./cmd/ferretdb) || { rm -rf "$src"; return 1; }
  # the MongoDB version FerretDB claims (buildInfo), for the image's `mongod --version`
  cp "$src/build/version/mongodb.txt" "$tmp/mongodb-version.txt"
  rm -rf "$src"
  log "building mongodump, mongorestore, bsondump $MONGO_TOOLS_VERSION"
  src=$(mongo_module github.com/mongodb/mongo-tools "$MONGO_TOOLS_MODULE" "$MONGO_TOOLS_SUM") || return 1
  local t
  for t in mongodump mongorestore bsondump; do
    (cd "$src" && mongo_go build -trimpath \
      -ldflags="-s -w -X main.VersionStr=$MONGO_TOOLS_VERSION -X main.GitCommit=${MONGO_TOOLS_MODULE##*-}" \
      -o "$tmp/$t" "./$t/main") || { rm -rf "$src"; return 1; }
  done
  rm -rf "$src"
  "$tmp/ferretdb" --version >&2 && "$tmp/mongodump" --version >&2 && "$tmp/mongorestore" --version >&2 \
    && "$tmp/bsondump" --version >&2 || return 1
  rm -rf "$out" && mv "$tmp" "$out"
}

build_mongo() {
  local tag=snapagent-test/mongo:latest base=snapagent/debian:bookworm
  local bin=$cache/mongo/ferretdb-$MONGO_FERRETDB_VERSION-${MONGO_FERRETDB_PATCH}_tools-$MONGO_TOOLS_VERSION hash ctx
  if [ ! -x "$bin/ferretdb" ] || [ ! -x "$bin/bsondump" ] || [ ! -s "$bin/mongodb-version.txt" ]; then
    mkdir -p "$cache/mongo"
    mongo_binaries "$bin" || { log "building the mongo test image's binaries failed"; return 1; }
  fi
  hash=$( (cd "$here/mongo" && find . -path ./replset -prune -o -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum "$bin"/*; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  if [ "$(current_hash "$tag")" = "$hash" ]; then
    log "$tag up to date"
  else
    log "building $tag"
    ctx=$(mktemp -d)
    (cd "$here/mongo" && cp Dockerfile docker-entrypoint.sh mongod "$ctx/")
    mkdir -p "$ctx/bin" && cp "$bin"/* "$ctx/bin/"
    docker build --network host --label "snapagent.build-hash=$hash" -t "$tag" "$ctx" >&2 || { rm -rf "$ctx"; return 1; }
    rm -rf "$ctx"
  fi
  build_mongo_replset
}

# snapagent-test/mongo-rs:latest: FROM the image above, with the patched FerretDB.
build_mongo_replset() {
  local tag=snapagent-test/mongo-rs:latest base=snapagent-test/mongo:latest bin hash ctx
  bin=$cache/mongo/ferretdb-$MONGO_FERRETDB_VERSION-${MONGO_FERRETDB_PATCH}-replset-$(sha256sum "$here/mongo/replset/"*.go "$here/mongo/image.sh" | sha256sum | cut -c1-12)
  if [ ! -x "$bin/ferretdb" ]; then
    mkdir -p "$cache/mongo"
    mongo_ferretdb_replset "$bin" || { log "building the replica-set stand-in's FerretDB failed"; return 1; }
  fi
  hash=$( (cd "$here/mongo/replset" && find . -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum "$bin"/*; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  [ "$(current_hash "$tag")" = "$hash" ] && { log "$tag up to date"; return; }
  log "building $tag"
  ctx=$(mktemp -d)
  cp "$here/mongo/replset/Dockerfile" "$bin/ferretdb" "$ctx/"
  docker build --network host --label "snapagent.build-hash=$hash" -t "$tag" "$ctx" >&2 || { rm -rf "$ctx"; return 1; }
  rm -rf "$ctx"
}
