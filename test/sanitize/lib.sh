# test/sanitize/lib.sh — shared by test/sanitize/run, valgrind and memflat.
#
# sm_private_tree DIR [MAKE ARGS]  copy the server tree of $PG_CONFIG under DIR,
#                                  build this source tree with MAKE ARGS in a
#                                  copy, install it there; sets PGBIN and
#                                  PG_CONFIG to the copy's.
# sm_regress_counts OUTPUT         "ok bad" of a pg_regress run's output.
#
# PostgreSQL finds its lib/ and share/ relative to its own executable, so a
# copy of its bin/lib tree (/usr/lib/postgresql/NN on Debian) and share/ is a server of
# its own: a sanitizer or valgrind build installed there never replaces the
# extension installed for everybody else on the machine.
sm_private_tree() {
	local dir=$1 pgconfig
	shift
	mkdir -p "$dir/build" || return 1
	pgconfig=$(sm_copy_tree "$dir") || return 1
	tar -C "$ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=tmp_check --exclude=./test/fuzz/bin \
		--exclude=./test/fuzz/artifacts -cf - . | tar -C "$dir/build" -xf - || return 1
	if ! make -C "$dir/build" -s -j2 PG_CONFIG="$PG_CONFIG" "$@" >"$dir/build.log" 2>&1 ||
		! make -C "$dir/build" -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$dir" >>"$dir/build.log" 2>&1; then
		cat "$dir/build.log"
		return 1
	fi
	PG_CONFIG=$pgconfig
	PGBIN=$dir$PGBIN
}

sm_regress_counts() {
	local ok bad
	ok=$(echo "$1" | grep -cE '^(ok |test .* \.\.\. ok|     [a-z_0-9]+ +\.\.\. ok)')
	bad=$(echo "$1" | grep -cE '(\.\.\. FAILED|^not ok)')
	echo "$ok $bad"
}
