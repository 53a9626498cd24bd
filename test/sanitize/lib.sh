# test/sanitize/lib.sh — shared by test/sanitize/run, valgrind and memflat.
#
# sm_private_tree DIR [MAKE ARGS]  copy the PostgreSQL 15 server tree under DIR,
#                                  build this source tree with MAKE ARGS in a
#                                  copy, install it there; sets PGBIN.
# sm_regress_counts OUTPUT         "ok bad" of a pg_regress run's output.
#
# PostgreSQL finds its lib/ and share/ relative to its own executable, so a
# copy of /usr/lib/postgresql/15 and /usr/share/postgresql/15 is a server of
# its own: a sanitizer or valgrind build installed there never replaces the
# extension installed for everybody else on the machine.
sm_private_tree() {
	local dir=$1
	shift
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/build" || return 1
	cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/" &&
		cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/" || return 1
	tar -C "$ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=tmp_check --exclude=./test/fuzz/bin \
		--exclude=./test/fuzz/artifacts -cf - . | tar -C "$dir/build" -xf - || return 1
	if ! make -C "$dir/build" -s -j2 "$@" >"$dir/build.log" 2>&1 ||
		! make -C "$dir/build" -s install DESTDIR="$dir" >>"$dir/build.log" 2>&1; then
		cat "$dir/build.log"
		return 1
	fi
	PGBIN=$dir/usr/lib/postgresql/15/bin
}

sm_regress_counts() {
	local ok bad
	ok=$(echo "$1" | grep -cE '^(ok |test .* \.\.\. ok|     [a-z_0-9]+ +\.\.\. ok)')
	bad=$(echo "$1" | grep -cE '(\.\.\. FAILED|^not ok)')
	echo "$ok $bad"
}
