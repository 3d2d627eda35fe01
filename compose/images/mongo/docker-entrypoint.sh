#!/usr/bin/env bash
# TEST IMAGE entrypoint, modelled on the official `mongo` image's docker-entrypoint.sh.
# The server is FerretDB (SQLite backend) behind a `mongod` wrapper (see
# /usr/local/bin/mongod for the options it understands):
#  - a first argument starting with '-' means "mongod with these options";
#  - as root, /data/db and /data/configdb are chowned to mongodb and the script re-runs
#    itself as mongodb (setpriv stands in for gosu);
#  - MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD (or *_FILE) add --auth
#    (FerretDB's SCRAM authentication) and, on first start (no *.sqlite in the dbpath),
#    create that user in `admin` with a temporary server on a private unix socket (no
#    TCP: a readiness probe can only succeed against the real server);
#  - on first start /docker-entrypoint-initdb.d/*.sh are sourced against that temporary
#    server (MONGO_INITDB_DATABASE, default test, is exported for them, as is
#    MONGO_INIT_TOOLS_CONFIG: a mongo-tools --config file with the uri and password,
#    e.g. `mongorestore --config="$MONGO_INIT_TOOLS_CONFIG" --archive=/seed.archive`).
#    *.js need mongosh, which this image does not have: they are skipped with a warning;
#  - without --bind_ip/--bind_ip_all, --bind_ip_all is added (0.0.0.0, as the official
#    image); the real server is exec'd (PID 1, clean shutdown on SIGTERM).
# Passwords are never printed and never on a command line (FerretDB reads the first
# user's from its environment, the tools from a 0600 file).
set -eo pipefail
shopt -s nullglob

log() { printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$1" "${*:2}"; }
note() { log Note "$@"; }
warn() { log Warn "$@" >&2; }
error() { log ERROR "$@" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE (Docker
# secrets), else DEFAULT. Setting both is an error.
file_env() {
  local var=$1 fileVar=${1}_FILE def=${2:-} val
  if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
    error "both $var and $fileVar are set (but are exclusive)"
  fi
  val=$def
  if [ -n "${!var:-}" ]; then
    val=${!var}
  elif [ -n "${!fileVar:-}" ]; then
    [ -r "${!fileVar}" ] || error "$fileVar: cannot read ${!fileVar}"
    val=$(<"${!fileVar}")
  fi
  export "$var=$val"
  unset "$fileVar"
}

# has_arg OPT ARGS...: whether --opt or --opt=... is among the args.
has_arg() {
  local opt=$1 a; shift
  for a; do case $a in "$opt" | "$opt"=*) return 0 ;; esac; done
  return 1
}

# arg_value OPT DEFAULT ARGS...: the last value given as `--opt V` or `--opt=V`.
arg_value() {
  local opt=$1 val=$2; shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      "$opt") val=${2:-}; shift ;;
      "$opt"=*) val=${1#*=} ;;
    esac
    shift
  done
  printf '%s' "$val"
}

# Percent-encoding for a mongodb:// URI component.
uri_escape() {
  local LC_ALL=C s=$1 i c out=
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in [a-zA-Z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}

# A YAML single-quoted scalar (mongo-tools --config files are YAML).
yaml_quote() { printf "'%s'" "${1//\'/\'\'}"; }

INIT_SOCKET=/tmp/mongodb-init.sock

temp_server_start() {
  rm -f "$INIT_SOCKET"
  if [ -n "$MONGO_INITDB_ROOT_USERNAME" ]; then
    # FerretDB creates the user (SCRAM-SHA-1 and -256) in `admin` while it starts,
    # before it listens, when `admin` does not exist yet.
    FERRETDB_SETUP_DATABASE=admin FERRETDB_SETUP_USERNAME=$MONGO_INITDB_ROOT_USERNAME \
      FERRETDB_SETUP_PASSWORD=$MONGO_INITDB_ROOT_PASSWORD \
      "$@" --listen-addr= --listen-unix="$INIT_SOCKET" &
  else
    "$@" --listen-addr= --listen-unix="$INIT_SOCKET" &
  fi
  SERVER_PID=$!
  note "Waiting for the temporary server (pid $SERVER_PID)"
  local i
  for ((i = 0; i < 300; i++)); do
    [ -S "$INIT_SOCKET" ] && return
    kill -0 "$SERVER_PID" 2>/dev/null || error "the temporary server exited during initialisation (see its log above)"
    sleep 0.1
  done
  error "the temporary server did not listen within 30 s"
}

temp_server_stop() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || error "the temporary server did not shut down cleanly"
  rm -f "$INIT_SOCKET"
}

# The uri (and password) the init scripts' tools use, in a file only mongodb can read.
write_tools_config() {
  MONGO_INIT_TOOLS_CONFIG=$(mktemp /tmp/mongo-tools-init.XXXXXX.yaml)
  local sock user=
  sock=$(uri_escape "$INIT_SOCKET")
  if [ -n "$MONGO_INITDB_ROOT_USERNAME" ]; then
    user="$(uri_escape "$MONGO_INITDB_ROOT_USERNAME")@"
    printf 'uri: %s\npassword: %s\n' "$(yaml_quote "mongodb://$user$sock/?authSource=admin")" \
      "$(yaml_quote "$MONGO_INITDB_ROOT_PASSWORD")" >"$MONGO_INIT_TOOLS_CONFIG"
  else
    printf 'uri: %s\n' "$(yaml_quote "mongodb://$sock/")" >"$MONGO_INIT_TOOLS_CONFIG"
  fi
  export MONGO_INIT_TOOLS_CONFIG
}

process_init_files() {
  local f
  export MONGO_INITDB_DATABASE=${MONGO_INITDB_DATABASE:-test}
  for f; do
    case $f in
      *.sh) note "running $f"; . "$f" ;;
      *.js) warn "skipping $f: *.js init scripts need mongosh, which this test image does not have" ;;
      *) note "ignoring $f" ;;
    esac
  done
}

main() {
  if [ "${1:0:1}" = - ]; then set -- mongod "$@"; fi
  if [ "$1" = mongod ] && [ "$(id -u)" = 0 ]; then
    local dbpath
    dbpath=$(arg_value --dbpath /data/db "$@")
    mkdir -p "$dbpath"
    find /data/configdb "$dbpath" \! -user mongodb -exec chown mongodb:mongodb '{}' +
    exec setpriv --reuid=mongodb --regid=mongodb --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [ "$1" = mongod ] && ! has_arg --version "$@" && ! has_arg --help "$@"; then
    file_env MONGO_INITDB_ROOT_USERNAME
    file_env MONGO_INITDB_ROOT_PASSWORD
    file_env MONGO_INITDB_DATABASE
    local init=
    if [ -n "$MONGO_INITDB_ROOT_USERNAME" ] && [ -n "$MONGO_INITDB_ROOT_PASSWORD" ]; then
      # a root user: clients must authenticate (authSource admin)
      has_arg --auth "$@" || set -- "$@" --auth
      init=root
    elif [ -n "$MONGO_INITDB_ROOT_USERNAME" ] || [ -n "$MONGO_INITDB_ROOT_PASSWORD" ]; then
      error "both MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD must be specified (or their _FILE variants) to create a root user"
    fi
    local f
    for f in /docker-entrypoint-initdb.d/*; do
      case $f in *.sh | *.js) init=${init:-scripts} ;; esac
    done
    local dbpath existing
    dbpath=$(arg_value --dbpath /data/db "$@")
    existing=("${dbpath%/}"/*.sqlite)
    if [ -n "$init" ] && [ ${#existing[@]} -gt 0 ]; then
      note "data found in $dbpath: skipping initialisation"
    elif [ -n "$init" ]; then
      note "Initialising $dbpath (FerretDB $(ferretdb --version | sed -n 's/^version: //p'), SQLite backend)"
      temp_server_start "$@"
      note "Temporary server started"
      [ -z "$MONGO_INITDB_ROOT_USERNAME" ] || note "Created user $MONGO_INITDB_ROOT_USERNAME in admin"
      write_tools_config
      process_init_files /docker-entrypoint-initdb.d/*
      rm -f "$MONGO_INIT_TOOLS_CONFIG"
      unset MONGO_INIT_TOOLS_CONFIG
      note "Stopping the temporary server"
      temp_server_stop
      note "MongoDB (FerretDB) init process complete; ready for start up."
    fi
    if ! has_arg --bind_ip "$@" && ! has_arg --bind_ip_all "$@" && ! has_arg --listen-addr "$@"; then
      set -- "$@" --bind_ip_all
    fi
    unset "${!MONGO_INITDB_@}"
  fi
  exec "$@"
}

main "$@"
