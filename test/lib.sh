# test/lib.sh — shared by test/run, test/demo and test/bench/run.
#
# sm_packages        install the Debian packages secretsmgr needs (as root)
# sm_build           build and install the extension
# sm_workdir         a scratch directory the postgres user can use ($WORK)
# sm_start_emulator  the Secrets Manager emulator on a free loopback port
# sm_start_cluster   a throwaway cluster on loopback pointed at the emulator
# Everything started here is stopped by sm_cleanup (set as the EXIT trap).
# Every server path comes from pg_config: PG_CONFIG=/path/to/pg_config picks
# another server (a private copy of the tree, or a source-built major).
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
# sm_pg_paths: PGBIN, PGXS_DIR and PG_MAJOR of $PG_CONFIG (again once
# sm_packages has installed it on a fresh machine)
sm_pg_paths() {
	PGBIN=$("$PG_CONFIG" --bindir 2>/dev/null)
	PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs 2>/dev/null)")")")
	PG_MAJOR=$("$PG_CONFIG" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
}
sm_pg_paths
SM_TEST_ACCESS_KEY=AKIDSECRETSMGRTEST
SM_TEST_SECRET_KEY='TESTSECRETKEY/secretsmgr+EXAMPLE'
export SM_TEST_ACCESS_KEY SM_TEST_SECRET_KEY
EMU_PID=""
PG_STARTED=""

SM_PKGS="postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev
         libjansson-dev libssl-dev libxml2-dev python3-botocore python3-boto3 python3-psycopg2
         libipc-run-perl make gcc curl postgresql-15-cron clang-14 libclang-rt-14-dev"

sm_packages() {
	local missing="" p
	for p in $SM_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] || [ -n "${SM_SKIP_INSTALL:-}" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages:$missing (run as root to install them)"; return 1
	fi
	echo "== installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null || return 1
	sm_pg_paths
}

# sm_build: build and install for $PG_CONFIG; the compiler's output is kept in
# $SM_BUILD_LOG (test/run counts its warnings).
SM_BUILD_LOG=${SM_BUILD_LOG:-$(mktemp /tmp/secretsmgr-build.XXXXXX)}
sm_build() {
	# objects built for another server are not rebuilt by make: clean first
	local built_for
	built_for="$("$PG_CONFIG" --bindir) $("$PG_CONFIG" --version)"
	if [ "$(cat .build-pg_config 2>/dev/null)" != "$built_for" ]; then
		make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
		echo "$built_for" >.build-pg_config
	fi
	make -s -j2 PG_CONFIG="$PG_CONFIG" >"$SM_BUILD_LOG" 2>&1 || { cat "$SM_BUILD_LOG"; return 1; }
	make -s install PG_CONFIG="$PG_CONFIG" >>"$SM_BUILD_LOG" 2>&1 || { cat "$SM_BUILD_LOG"; return 1; }
}

# sm_copy_tree DIR: copy the server of $PG_CONFIG under DIR (same paths below
# DIR) and print the copy's pg_config.  PostgreSQL finds lib/ and share/
# relative to its executables, so the copy is a server of its own: an
# extension installed there (make install PG_CONFIG=...) leaves the
# machine's server untouched.  Headers are linked, not copied.
sm_copy_tree() {
	local dir=$1 base share inc
	base=$(dirname "$PGBIN")
	share=$("$PG_CONFIG" --sharedir)
	inc=$("$PG_CONFIG" --includedir-server)
	# base first: in a source-built tree share/ lies inside it
	mkdir -p "$dir$(dirname "$base")" || return 1
	[ -d "$dir$base" ] || cp -a "$base" "$dir$(dirname "$base")/" || return 1
	mkdir -p "$dir$(dirname "$share")" || return 1
	[ -d "$dir$share" ] || cp -a "$share" "$dir$(dirname "$share")/" || return 1
	if [ ! -e "$dir$inc" ]; then
		mkdir -p "$(dirname "$dir$inc")" && ln -s "$inc" "$dir$inc" || return 1
	fi
	[ "$(id -u)" = 0 ] && chmod 755 "$dir"
	echo "$dir$PGBIN/pg_config"
}

AS_PG() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# sm_workdir: $WORK holds a copy of what the suites read (Makefile, control
# file, docs/, test/), so the TAP suites run there through `make
# installcheck` as the postgres user and write nothing into the source tree.
sm_workdir() {
	WORK=$(mktemp -d /tmp/secretsmgr.XXXXXX)
	chmod 755 "$WORK"
	cp -r test docs Makefile secretsmgr.control "$WORK/"
	[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$WORK"
	trap sm_cleanup EXIT
}

sm_cleanup() {
	[ -n "$PG_STARTED" ] && AS_PG "$PGBIN/pg_ctl" -D "$WORK/pgdata" -m immediate stop >/dev/null 2>&1
	[ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null
	[ -z "${SM_KEEP:-}" ] && rm -rf "$WORK"
}

sm_start_emulator() {
	/usr/bin/python3 test/emulator/smemu.py --port 0 --port-file "$WORK/emu.port" \
		--access-key "$SM_TEST_ACCESS_KEY" --secret-key "$SM_TEST_SECRET_KEY" \
		--parent-pid $$ --log "$WORK/emu.log" "$@" &
	EMU_PID=$!
	SM_EMULATOR_URL=$(/usr/bin/python3 test/emulator/smctl wait-port "$WORK/emu.port") || return 1
	export SM_EMULATOR_URL
}

# sm_start_cluster [extra postgresql.conf lines]: sets PGHOST PGPORT PGUSER.
# With SM_BARE_CLUSTER=1, postgresql.conf has no secretsmgr setting at all
# (a newcomer's cluster): the endpoint and the keys reach the server through
# its environment, as a service unit's environment file gives them.
sm_start_cluster() {
	local smconf="secretsmgr.endpoint = '$SM_EMULATOR_URL'
secretsmgr.region = 'us-east-1'
secretsmgr.access_key_id = '$SM_TEST_ACCESS_KEY'
secretsmgr.secret_access_key = '$SM_TEST_SECRET_KEY'"
	local smenv=""
	if [ -n "${SM_BARE_CLUSTER:-}" ]; then
		smconf=""
		smenv="AWS_ENDPOINT_URL_SECRETS_MANAGER=$SM_EMULATOR_URL AWS_ACCESS_KEY_ID=$SM_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SM_TEST_SECRET_KEY"
	fi
	PGPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	AS_PG "$PGBIN/initdb" -D "$WORK/pgdata" -U postgres -A trust --no-sync >/dev/null || return 1
	cat >>"$WORK/pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK'
fsync = off
password_encryption = 'scram-sha-256'
$smconf
${1:-}
CONF
	# password logins over TCP for every role but the bootstrap superuser
	cat >"$WORK/pgdata/pg_hba.conf" <<HBA
local all postgres trust
host  all postgres 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
HBA
	# never reach for the real instance metadata service from a test
	AS_PG env AWS_EC2_METADATA_DISABLED=true $smenv "$PGBIN/pg_ctl" -D "$WORK/pgdata" \
		-l "$WORK/pg.log" -w start >/dev/null || { cat "$WORK/pg.log"; return 1; }
	PG_STARTED=1
	PGHOST=$WORK PGUSER=postgres
	export PGHOST PGPORT PGUSER
}
