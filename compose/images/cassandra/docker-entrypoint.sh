#!/usr/bin/env bash
# TEST IMAGE entrypoint, modelled on the official `cassandra` image's docker-entrypoint.sh:
#  - a first argument starting with '-' means "cassandra -f with these options";
#  - as root, the data/log/conf dirs are given to the cassandra user and the script
#    re-runs itself as that user (gosu);
#  - CASSANDRA_* env is written into $CASSANDRA_CONF/cassandra.yaml (and
#    cassandra-rackdc.properties) on every start, as the official image does:
#      CASSANDRA_CLUSTER_NAME, CASSANDRA_LISTEN_ADDRESS (default auto: the container's
#      address), CASSANDRA_BROADCAST_ADDRESS (default: the listen address),
#      CASSANDRA_RPC_ADDRESS (default 0.0.0.0), CASSANDRA_BROADCAST_RPC_ADDRESS (default:
#      the broadcast address), CASSANDRA_SEEDS (default: the broadcast address),
#      CASSANDRA_ENDPOINT_SNITCH, CASSANDRA_NUM_TOKENS, CASSANDRA_DC, CASSANDRA_RACK;
#    extensions of this test image (tests run with --network host, where ports must
#    not clash): CASSANDRA_NATIVE_PORT (native_transport_port, default 9042),
#    CASSANDRA_STORAGE_PORT (storage_port, default 7000), CASSANDRA_JMX_PORT (local JMX,
#    default 7199; read by bin/cassandra and nodetool), CASSANDRA_AUTHENTICATOR and
#    CASSANDRA_AUTHORIZER (e.g. PasswordAuthenticator / CassandraAuthorizer; default
#    AllowAll*, as the official image; with PasswordAuthenticator the server creates the
#    default superuser cassandra/cassandra on first start), each also as <NAME>_FILE;
#  - then the server is exec'd (PID 1, clean shutdown on SIGTERM).
# With --network host, set CASSANDRA_LISTEN_ADDRESS and CASSANDRA_RPC_ADDRESS (e.g.
# 127.0.0.1): the official defaults (auto, 0.0.0.0) would bind the host's interfaces.
set -eo pipefail

log() { printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$1" "${*:2}"; }
error() { log ERROR "$@" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE, else DEFAULT.
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
  if [ -n "$val" ]; then export "$var=$val"; fi
  unset "$fileVar"
}

# The container's first address, as the official image's _ip_address; with no address
# to find (--network none: the hostname does not resolve) 127.0.0.1, where the official
# image would exit.
ip_address() {
  local ip
  ip=$(hostname --ip-address 2>/dev/null | cut -d' ' -f1) || true
  if [ -z "$ip" ]; then
    log Warn "cannot resolve the container's hostname: using 127.0.0.1 for 'auto'" >&2
    ip=127.0.0.1
  fi
  printf '%s\n' "$ip"
}

# Escape a value for the replacement side of a sed s/// command (delimiter '/').
sed_value() {
  printf '%s' "$1" | sed -e 's/[\/&|\\]/\\&/g'
}

# set_yaml KEY VALUE: replace the line `KEY: ...` (or a commented `# KEY: ...`).
set_yaml() {
  local yaml=$CASSANDRA_CONF/cassandra.yaml
  grep -qE "^(# )?$1:" "$yaml" || error "cassandra.yaml has no $1 line to set"
  sed -i -r "s/^(# )?($1:).*/\\2 $(sed_value "$2")/" "$yaml"
}

configure() {
  local yaml=$CASSANDRA_CONF/cassandra.yaml v var
  for v in CLUSTER_NAME LISTEN_ADDRESS BROADCAST_ADDRESS RPC_ADDRESS BROADCAST_RPC_ADDRESS SEEDS \
    ENDPOINT_SNITCH NUM_TOKENS DC RACK NATIVE_PORT STORAGE_PORT JMX_PORT AUTHENTICATOR AUTHORIZER; do
    file_env "CASSANDRA_$v"
  done
  : "${CASSANDRA_RPC_ADDRESS:=0.0.0.0}"
  : "${CASSANDRA_LISTEN_ADDRESS:=auto}"
  if [ "$CASSANDRA_LISTEN_ADDRESS" = auto ]; then CASSANDRA_LISTEN_ADDRESS=$(ip_address); fi
  : "${CASSANDRA_BROADCAST_ADDRESS:=$CASSANDRA_LISTEN_ADDRESS}"
  if [ "$CASSANDRA_BROADCAST_ADDRESS" = auto ]; then CASSANDRA_BROADCAST_ADDRESS=$(ip_address); fi
  : "${CASSANDRA_BROADCAST_RPC_ADDRESS:=$CASSANDRA_BROADCAST_ADDRESS}"
  if [ -n "${CASSANDRA_NAME:+1}" ]; then : "${CASSANDRA_SEEDS:=cassandra}"; fi
  : "${CASSANDRA_SEEDS:=$CASSANDRA_BROADCAST_ADDRESS}"
  export CASSANDRA_RPC_ADDRESS CASSANDRA_LISTEN_ADDRESS CASSANDRA_BROADCAST_ADDRESS \
    CASSANDRA_BROADCAST_RPC_ADDRESS CASSANDRA_SEEDS

  sed -i -r "s/(- seeds:).*/\\1 \"$(sed_value "$CASSANDRA_SEEDS")\"/" "$yaml"
  for v in broadcast_address broadcast_rpc_address cluster_name endpoint_snitch listen_address \
    num_tokens rpc_address authenticator authorizer; do
    var=CASSANDRA_${v^^}
    if [ -n "${!var:-}" ]; then set_yaml "$v" "${!var}"; fi
  done
  # extensions: ports
  if [ -n "${CASSANDRA_NATIVE_PORT:-}" ]; then set_yaml native_transport_port "$CASSANDRA_NATIVE_PORT"; fi
  if [ -n "${CASSANDRA_STORAGE_PORT:-}" ]; then set_yaml storage_port "$CASSANDRA_STORAGE_PORT"; fi
  for v in dc rack; do
    var=CASSANDRA_${v^^}
    if [ -n "${!var:-}" ]; then
      sed -i -r "s/^($v=).*/\\1$(sed_value "${!var}")/" "$CASSANDRA_CONF/cassandra-rackdc.properties"
    fi
  done
  log Note "cassandra.yaml: listen_address $CASSANDRA_LISTEN_ADDRESS, rpc_address $CASSANDRA_RPC_ADDRESS," \
    "native_transport_port $(awk '/^native_transport_port:/ {print $2}' "$yaml")," \
    "storage_port $(awk '/^storage_port:/ {print $2}' "$yaml"), JMX port ${CASSANDRA_JMX_PORT:-7199} (local)"
}

main() {
  if [ "${1:0:1}" = - ]; then set -- cassandra -f "$@"; fi
  if [ "$1" = cassandra ] && [ "$(id -u)" = 0 ]; then
    # --network none: Docker maps no address to the hostname and Cassandra exits with
    # "Unable to resolve hostname"; map it to loopback (an extension: the official image
    # fails there).
    if ! getent hosts "$(hostname)" >/dev/null && [ -w /etc/hosts ]; then
      log Warn "the hostname $(hostname) does not resolve: adding it to /etc/hosts as 127.0.0.1" >&2
      printf '127.0.0.1\t%s\n' "$(hostname)" >>/etc/hosts
    fi
    find /var/lib/cassandra /var/log/cassandra "$CASSANDRA_CONF" \! -user cassandra -exec chown cassandra '{}' +
    exec gosu cassandra "$BASH_SOURCE" "$@"
  fi
  if [ "$1" = cassandra ]; then configure; fi
  exec "$@"
}

main "$@"
