#!/usr/bin/env bash
# TEST IMAGE entrypoint, modelled on the official `elasticsearch` image's (8.x):
#  - CMD `eswrapper` (the default), `elasticsearch` or `bin/elasticsearch`, or arguments
#    starting with '-', mean "the server, with these extra arguments" (e.g. `-E x.y=z`);
#    any other command is exec'd as given (e.g. `bash`, `elasticsearch-keystore list`);
#  - environment variables named like settings (`discovery.type=single-node`,
#    `path.repo=/snapshots`: lowercase words joined by dots), or ES_SETTING_* (ES_SETTING_
#    HTTP_PORT=19200 is http.port, a double underscore is a literal one), become `-E`
#    settings, as the official image's Elasticsearch does for its `docker` build type
#    (this distribution is the `zip` type, so the entrypoint does it); empty values are
#    skipped; a `-E` in the arguments wins over the same setting in the environment;
#  - ELASTIC_PASSWORD (or ELASTIC_PASSWORD_FILE) sets the `elastic` user's bootstrap
#    password in the keystore, on stdin, never on a command line; KEYSTORE_PASSWORD(_FILE)
#    unlocks a password-protected keystore; ES_LOG_STYLE=file logs to files instead;
#  - the heap defaults to 512 MiB (-Xms512m -Xmx512m) unless ES_JAVA_OPTS or
#    config/jvm.options.d sets one (Elasticsearch's own default is half the host's RAM);
#  - started as root (`--user 0`), it creates the data, logs and path.repo directories,
#    gives them to uid 1000 (group 0, as the official TAKE_FILE_OWNERSHIP does for data
#    and logs) and drops to uid 1000 gid 0; the image's default user is 1000:0;
#  - the server is exec'd: its launcher JVM is PID 1 and stops the server on SIGTERM.
set -eo pipefail

# Files created by Elasticsearch are group writable too (the official image's umask).
umask 0002

ES_HOME=/usr/share/elasticsearch
cd "$ES_HOME"

log() { printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$1" "${*:2}" >&2; }
note() { log Note "$@"; }
error() { log ERROR "$@"; exit 1; }

# as_es CMD...: run CMD as uid 1000 gid 0 when we are root (supplementary groups of the
# elasticsearch user: elasticsearch and root), as ourselves otherwise.
as_es() {
  if [ "$(id -u)" = 0 ]; then
    HOME=$ES_HOME setpriv --reuid=1000 --regid=0 --init-groups -- "$@"
  else
    "$@"
  fi
}

# file_env VAR: VAR from $VAR or from the file named by $VAR_FILE (Docker secrets).
# Setting both is an error.
file_env() {
  local var=$1 fileVar=${1}_FILE val=
  if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
    error "both $var and $fileVar are set (but are exclusive)"
  fi
  if [ -n "${!var:-}" ]; then
    val=${!var}
  elif [ -n "${!fileVar:-}" ]; then
    [ -r "${!fileVar}" ] || error "$fileVar: cannot read ${!fileVar}"
    val=$(<"${!fileVar}")
  fi
  unset "$fileVar"
  if [ -n "$val" ]; then export "$var=$val"; else unset "$var"; fi
}

# Settings given as `-E key=value` or `-Ekey=value` in the arguments.
declare -A arg_settings=()
collect_arg_settings() {
  local next= a kv
  for a; do
    if [ -n "$next" ]; then kv=$a; next=
    elif [ "$a" = -E ]; then next=1; continue
    elif [[ $a == -E?* ]]; then kv=${a#-E}
    else continue
    fi
    arg_settings[${kv%%=*}]=${kv#*=}
  done
}

# Settings from the environment. Names with dots cannot be shell variables: read them
# from this process's initial environment.
declare -a es_opts=()
declare -A env_settings=()
collect_env_settings() {
  local kv key val
  while IFS= read -r -d '' kv; do
    key=${kv%%=*} val=${kv#*=}
    if [[ $key =~ ^[-a-z0-9_]+(\.[-a-z0-9_]+)+$ ]]; then
      :
    elif [[ $key == ES_SETTING_?* ]]; then
      key=${key#ES_SETTING_}
      key=${key//__/$'\1'}
      key=${key//_/.}
      key=${key//$'\1'/_}
      key=${key,,}
    else
      continue
    fi
    [ -n "$val" ] || continue
    [ -z "${arg_settings[$key]+set}" ] || continue
    env_settings[$key]=$val
    es_opts+=("-E$key=$val")
  done </proc/$$/environ
}

# setting_value KEY: from the arguments, else the environment, else a one-line entry of
# config/elasticsearch.yml (`key: value` or `key: [a, b]`), else empty.
setting_value() {
  local key=$1 line
  if [ -n "${arg_settings[$key]+set}" ]; then printf '%s' "${arg_settings[$key]}"; return; fi
  if [ -n "${env_settings[$key]+set}" ]; then printf '%s' "${env_settings[$key]}"; return; fi
  line=$(grep -E "^${key//./\\.}[[:space:]]*:" config/elasticsearch.yml 2>/dev/null | tail -1 || true)
  line=${line#*:}
  printf '%s' "$line"
}

# path_list VALUE: the paths of a list setting ("/a,/b", "[/a, /b]", '"/a"'), one a line.
path_list() {
  local v=$1 p
  v=${v//[\[\]\"\']/}
  local IFS=,
  for p in $v; do
    p=${p#"${p%%[![:space:]]*}"}
    p=${p%"${p##*[![:space:]]}"}
    [ -n "$p" ] && printf '%s\n' "$p"
  done
  return 0
}

# As root: the directories Elasticsearch writes to exist and belong to uid 1000 (only
# entries that do not are changed, so restarts are quick).
take_ownership() {
  local dirs=() d
  mapfile -t dirs < <(
    path_list "$(setting_value path.data)"
    path_list "$(setting_value path.logs)"
    path_list "$(setting_value path.repo)"
  )
  [ -n "$(setting_value path.data)" ] || dirs+=("$ES_HOME/data")
  [ -n "$(setting_value path.logs)" ] || dirs+=("$ES_HOME/logs")
  for d in "${dirs[@]}"; do
    case $d in /*) ;; *) d=$ES_HOME/$d ;; esac
    mkdir -p "$d"
    find "$d" \( \! -user 1000 -o \! -group 0 \) -exec chown 1000:0 '{}' +
  done
}

# The elastic user's bootstrap password goes to the keystore through stdin.
set_bootstrap_password() {
  [ -x bin/elasticsearch-keystore ] || return 0
  # each keystore command is a JVM start (1-4 s): a new keystore takes one (`add -f`
  # creates it), the official image's create/has-passwd/list/add sequence four
  if [ ! -f config/elasticsearch.keystore ]; then
    printf '%s\n' "$ELASTIC_PASSWORD" | as_es elasticsearch-keystore add -x -f bootstrap.password
  elif as_es elasticsearch-keystore has-passwd --silent; then
    # password-protected keystore: its password first, then the value
    if ! printf '%s\n' "$KEYSTORE_PASSWORD" | as_es elasticsearch-keystore list | grep -qx bootstrap.password; then
      printf '%s\n%s\n' "$KEYSTORE_PASSWORD" "$ELASTIC_PASSWORD" | as_es elasticsearch-keystore add -x bootstrap.password
    fi
  elif ! as_es elasticsearch-keystore list | grep -qx bootstrap.password; then
    printf '%s\n' "$ELASTIC_PASSWORD" | as_es elasticsearch-keystore add -x bootstrap.password
  fi
  note "bootstrap password of the elastic user set in the keystore"
}

# Elasticsearch's own heap default is half the machine's RAM: tests want a small one.
default_heap() {
  if [[ " $ES_JAVA_OPTS " =~ [[:space:]]-(Xm[sx]|XX:(MaxRAM|InitialRAM|MinRAM)Percentage) ]]; then return; fi
  if grep -qsE '^[[:space:]]*([0-9]+-?[0-9]*:)?-Xm[sx]' config/jvm.options.d/*.options 2>/dev/null; then return; fi
  export ES_JAVA_OPTS="-Xms512m -Xmx512m${ES_JAVA_OPTS:+ $ES_JAVA_OPTS}"
}

main() {
  case $1 in
    eswrapper | elasticsearch | */elasticsearch) shift ;;
    -*) ;;
    *) exec "$@" ;;
  esac

  file_env ELASTIC_PASSWORD
  file_env KEYSTORE_PASSWORD

  collect_arg_settings "$@"
  collect_env_settings

  case ${ES_LOG_STYLE:-console} in
    console) ;;
    file) cp -f config/log4j2.file.properties config/log4j2.properties ;;
    *) error "ES_LOG_STYLE set to [$ES_LOG_STYLE]. Expected [console] or [file]" ;;
  esac

  if [ "$(id -u)" = 0 ]; then take_ownership; fi
  if [ -n "$ELASTIC_PASSWORD" ]; then set_bootstrap_password; fi
  unset ELASTIC_PASSWORD
  default_heap

  local settings=() o
  for o in "${es_opts[@]}"; do settings+=("${o%%=*}"); done
  note "starting Elasticsearch as uid 1000, heap options [${ES_JAVA_OPTS}], settings from the environment: [${settings[*]#-E}]"

  set -- "$ES_HOME/bin/elasticsearch" "${es_opts[@]}" "$@"
  if [ "$(id -u)" = 0 ]; then
    export HOME=$ES_HOME
    set -- setpriv --reuid=1000 --regid=0 --init-groups -- "$@"
  fi
  if [ -n "$KEYSTORE_PASSWORD" ]; then
    local kp=$KEYSTORE_PASSWORD
    unset KEYSTORE_PASSWORD
    exec "$@" <<<"$kp"
  fi
  exec "$@"
}

main "$@"
