#!/usr/bin/env bash
# TEST IMAGE entrypoint, modelled on the official `mariadb` image's docker-entrypoint.sh:
#  - a first argument starting with '-' means "mariadbd with these options";
#  - on first start (no <datadir>/mysql) the datadir is initialised from the env
#    (MARIADB_* or MYSQL_*, each also as <NAME>_FILE) with a temporary server that has
#    no networking, and /docker-entrypoint-initdb.d/* is run against it;
#  - then the real server is exec'd (PID 1, clean shutdown on SIGTERM).
# Passwords are never printed, never on a command line: the client reads them from a
# defaults file on a pipe. (Exception, as in the official image: the password made by
# MARIADB_RANDOM_ROOT_PASSWORD is printed once, as it cannot be learnt otherwise.)
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

# mariadb_env NAME [DEFAULT] [MYSQL_ALIAS]: MARIADB_NAME wins, else its MYSQL_ alias
# (MYSQL_NAME unless given), each either plain or as *_FILE. Both end up set alike.
mariadb_env() {
  local var=MARIADB_$1 alias=${3:-MYSQL_$1}
  file_env "$alias" "${2:-}"
  file_env "$var" "${!alias}"
  export "$alias=${!var}"
}

# mysql_get_config NAME SERVER-ARGS...: the value the server would use for an option
# (config files plus command-line args), e.g. datadir or socket.
mysql_get_config() {
  local conf=$1; shift
  "$@" --verbose --help --log-bin-index="$(mktemp -u)" 2>/dev/null \
    | awk -v conf="$conf" '!found && $1 == conf && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; found = 1 }'
}

# Escapes for a single-quoted SQL string literal / an option-file quoted value.
sql_escape() {
  local s=${1//\\/\\\\}
  s=${s//$'\n'/\\n}
  printf '%s' "${s//\'/\\\'}"
}
optfile_escape() {
  local s=${1//\\/\\\\}
  s=${s//$'\n'/\\n}
  printf '%s' "${s//\"/\\\"}"
}
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

# The client, as root over the temporary server's private socket. --dont-use-mysql-root-password
# before the root password is set. Uses MARIADB_DATABASE by default when it is set.
docker_process_sql() {
  local pw=$MARIADB_ROOT_PASSWORD
  if [ "$1" = --dont-use-mysql-root-password ]; then pw=; shift; fi
  if [ -n "$MARIADB_DATABASE" ]; then set -- --database="$MARIADB_DATABASE" "$@"; fi
  mariadb --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$(optfile_escape "$pw")") \
    --protocol=socket -uroot -hlocalhost --socket="$INIT_SOCKET" "$@"
}

want_help() {
  local arg
  for arg; do
    case $arg in -'?' | --help | --print-defaults | -V | --version) return 0 ;; esac
  done
  return 1
}

setup_env() {
  DATADIR=$(mysql_get_config datadir "$@")
  DATADIR=${DATADIR%/}
  SOCKET=$(mysql_get_config socket "$@")
  [ -n "$DATADIR" ] || error "cannot determine the datadir (check the server options: $*)"
  mariadb_env ROOT_HOST '%'
  mariadb_env DATABASE
  mariadb_env USER
  mariadb_env PASSWORD
  mariadb_env ROOT_PASSWORD
  mariadb_env ALLOW_EMPTY_ROOT_PASSWORD '' MYSQL_ALLOW_EMPTY_PASSWORD
  mariadb_env RANDOM_ROOT_PASSWORD
  mariadb_env INITDB_SKIP_TZINFO
  DATABASE_ALREADY_EXISTS=
  if [ -d "$DATADIR/mysql" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

verify_minimum_env() {
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    error "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_FILE,
	MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD (or their MYSQL_ aliases)"
  fi
  if [ "$MARIADB_USER" = root ]; then
    error "MARIADB_USER=root: root is created by the image; use MARIADB_ROOT_PASSWORD to set its password"
  fi
  if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
    error "MARIADB_USER is set but MARIADB_PASSWORD (or MARIADB_PASSWORD_FILE) is not"
  fi
  if [ -z "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
    warn "MARIADB_PASSWORD is set but MARIADB_USER is not: no user will be created"
  fi
}

create_db_directories() {
  mkdir -p "$DATADIR"
  if [ "$(id -u)" = 0 ]; then
    find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' +
    if [ -n "$SOCKET" ]; then mkdir -p "$(dirname "$SOCKET")" && chown mysql:mysql "$(dirname "$SOCKET")"; fi
  fi
}

# The temporary server has no networking and its own socket (the official image uses
# the normal one): a readiness probe (`docker exec ... mariadb -uroot -p...`, or over
# TCP) can then only succeed against the real server, never during initialisation.
# Init scripts' plain `mariadb` calls reach it through $MARIADB_HOME/my.cnf, read after
# /etc/mysql/my.cnf (MYSQL_UNIX_PORT would not do: Debian's my.cnf sets the socket).
temp_server_start() {
  INIT_SOCKET=/run/mysqld/mysqld-init.sock
  INIT_HOME=$(mktemp -d)
  printf '[client-server]\nsocket=%s\n' "$INIT_SOCKET" >"$INIT_HOME/my.cnf"
  chmod -R a+rX "$INIT_HOME"
  export MARIADB_HOME=$INIT_HOME
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$INIT_SOCKET" --loose-wsrep-on=OFF \
    --expire-logs-days=0 --loose-innodb-buffer-pool-load-at-startup=0 &
  MARIADB_PID=$!
  note "Waiting for the temporary server (pid $MARIADB_PID)"
  local i
  for ((i = 0; i < 300; i++)); do
    if docker_process_sql --dont-use-mysql-root-password --database=mysql <<<'SELECT 1' &>/dev/null; then
      return
    fi
    kill -0 "$MARIADB_PID" 2>/dev/null || error "the temporary server exited during initialisation (see its log above)"
    sleep 0.1
  done
  error "the temporary server did not accept connections within 30 s"
}

temp_server_stop() {
  kill -TERM "$MARIADB_PID"
  wait "$MARIADB_PID" || error "the temporary server did not shut down cleanly"
  unset MARIADB_HOME
  rm -rf "$INIT_HOME"
}

setup_db() {
  if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ] && [ -d /usr/share/zoneinfo ]; then
    note "Loading time zone tables"
    # --skip-write-binlog: a binary log, if enabled, must not replay these
    mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2>/dev/null \
      | docker_process_sql --dont-use-mysql-root-password --database=mysql
  fi
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
    export MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD=$MARIADB_ROOT_PASSWORD
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi
  local rootPw rootHost rootCreate= userCreate= dbCreate=
  rootPw=$(sql_escape "$MARIADB_ROOT_PASSWORD")
  rootHost=$(sql_escape "$MARIADB_ROOT_HOST")
  if [ -n "$MARIADB_ROOT_HOST" ] && [ "$MARIADB_ROOT_HOST" != localhost ]; then
    rootCreate="CREATE USER 'root'@'$rootHost' IDENTIFIED BY '$rootPw';
GRANT ALL ON *.* TO 'root'@'$rootHost' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'$rootHost' WITH GRANT OPTION;"
  fi
  if [ -n "$MARIADB_DATABASE" ]; then
    note "Creating database $MARIADB_DATABASE"
    dbCreate="CREATE DATABASE IF NOT EXISTS $(sql_ident "$MARIADB_DATABASE");"
  fi
  if [ -n "$MARIADB_USER" ]; then
    note "Creating user $MARIADB_USER"
    userCreate="CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
    if [ -n "$MARIADB_DATABASE" ]; then
      note "Giving user $MARIADB_USER access to schema $MARIADB_DATABASE"
      userCreate+="
GRANT ALL ON $(sql_ident "${MARIADB_DATABASE//_/\\_}").* TO '$(sql_escape "$MARIADB_USER")'@'%';"
    fi
  fi
  note "Securing system users"
  # --database=mysql: MARIADB_DATABASE does not exist yet
  docker_process_sql --dont-use-mysql-root-password --database=mysql --binary-mode <<-EOSQL
	SET @@SESSION.SQL_LOG_BIN=0;
	SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
	DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
	EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
	SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$rootPw');
	$rootCreate
	$dbCreate
	$userCreate
	EOSQL
}

process_init_files() {
  local f
  for f; do
    case $f in
      *.sh)
        if [ -x "$f" ]; then note "running $f"; "$f"
        else note "sourcing $f"; . "$f"; fi ;;
      *.sql) note "running $f"; docker_process_sql <"$f" ;;
      *.sql.gz) note "running $f"; gunzip -c "$f" | docker_process_sql ;;
      *.sql.xz) note "running $f"; xzcat "$f" | docker_process_sql ;;
      *.sql.zst) note "running $f"; zstd -dc "$f" | docker_process_sql ;;
      *) warn "ignoring $f" ;;
    esac
  done
}

main() {
  if [ "${1:0:1}" = - ]; then set -- mariadbd "$@"; fi
  if { [ "$1" = mariadbd ] || [ "$1" = mysqld ]; } && ! want_help "$@"; then
    # As root, the server drops to the mysql user (a --user=... in the args still wins).
    if [ "$(id -u)" = 0 ]; then set -- "$1" --user=mysql "${@:2}"; fi
    note "Entrypoint script for MariaDB Server $("$1" --version 2>/dev/null | awk '{print $3}') started."
    # Bad options fail here, with the server's own message.
    local err
    if ! err=$("$@" --verbose --help --log-bin-index="$(mktemp -u)" 2>&1 >/dev/null); then
      error "mariadbd failed while checking its configuration (args: ${*:2}): $err"
    fi
    setup_env "$@"
    create_db_directories
    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      verify_minimum_env
      note "Initializing database files in $DATADIR"
      local installArgs=(--datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db
        --default-time-zone=SYSTEM --skip-log-bin --expire-logs-days=0
        --loose-innodb-buffer-pool-load-at-startup=0 --loose-innodb-buffer-pool-dump-at-shutdown=0)
      # the server args (innodb sizes...) apply to the bootstrap too; --user=mysql among them
      mariadb-install-db "${installArgs[@]}" "${@:2}" >/dev/null \
        || error "mariadb-install-db failed"
      note "Database files initialized"
      temp_server_start "$@"
      note "Temporary server started"
      setup_db
      process_init_files /docker-entrypoint-initdb.d/*
      note "Stopping the temporary server"
      temp_server_stop
      note "MariaDB init process done. Ready for start up."
    else
      note "MariaDB data found in $DATADIR: skipping initialisation"
    fi
  fi
  exec "$@"
}

main "$@"
