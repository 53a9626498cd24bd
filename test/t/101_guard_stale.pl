# The drift guard and stale clients, on a cluster with secretsmgr in
# shared_preload_libraries and on a plain one.
#
# Preloaded: with secretsmgr.guard = error, a manual ALTER ROLE ... PASSWORD
# (and NOLOGIN, VALID UNTIL, RENAME, DROP ROLE) on a managed role or its
# clone is refused with a hint and recorded in secretsmgr_rotation_history
# (never the password), while the rotation's own ALTER ROLE passes; warn
# mode runs the statement, warns and records it (a rollback takes the
# record away too); a superuser switching the guard off in a session is
# recorded, and so is what then runs.  A client still using the old
# password after a rotation (real libpq logins) is counted with its
# address; a session connected before the rotation is listed.
#
# Plain: the same statements run untouched, secretsmgr_stale_clients() says
# that failed logins need the preload, and health says the guard is off.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = SmTest::new_node('guard',
	scram_hba => 1,
	conf => "shared_preload_libraries = 'secretsmgr'\n"
	  . "secretsmgr.guard = error\n"
	  . "secretsmgr.cache_ttl = 0\n");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'guard/app',
	'{"engine":"postgres","host":"127.0.0.1","username":"guard_app","password":"Guard-Initial-Pw-1"}');
SmTest::smctl('create', 'guard/alt',
	'{"engine":"postgres","host":"127.0.0.1","username":"guard_alt","password":"Guard-Alt-Pw-2"}');
SmTest::smctl('create', 'plain/app',
	'{"engine":"postgres","host":"127.0.0.1","username":"plain_app","password":"Plain-Initial-Pw-3"}');
$node->safe_psql('postgres', q{
	CREATE ROLE guard_app LOGIN;
	CREATE ROLE guard_alt LOGIN;
	CREATE ROLE guard_other LOGIN;
	CREATE ROLE guard_dba LOGIN;
	SELECT secretsmgr_manage('guard/app', 'guard_app');
	SELECT secretsmgr_manage('guard/alt', 'guard_alt', 'alternating');
	SELECT secretsmgr_rotate('guard/app');
	SELECT secretsmgr_rotate('guard/alt');
});

# Drift rows of a role: "status|error|executed_by" lines, oldest first.
sub drift_rows
{
	my ($n, $role) = @_;
	return $n->safe_psql('postgres',
		"SELECT status || '|' || error || '|' || executed_by FROM secretsmgr_rotation_history "
		  . "WHERE step = 'drift' AND role_name = '$role' ORDER BY id");
}

# --- error mode: refused, recorded, nothing changed --------------------------
my ($user, $pw) = SmTest::stage_creds('guard/app');
my ($ret, $out, $err) = $node->psql('postgres',
	"ALTER ROLE guard_app PASSWORD 'Manual-Drift-Pw-9'",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'error: a manual ALTER ROLE ... PASSWORD on a managed role is refused');
like($err, qr/ERROR:  55000: role "guard_app" is managed by secretsmgr/,
	'error: the refusal names the role, with SQLSTATE 55000');
like($err, qr/DETAIL:  Secret "guard\/app" holds its password/, 'error: with a detail');
like($err, qr/HINT:  Rotate with secretsmgr_rotate\('guard\/app'\)/, 'error: with a hint');
is(drift_rows($node, 'guard_app'),
	'refused|ALTER ROLE ... PASSWORD from outside secretsmgr|postgres',
	'error: the refusal is recorded although its transaction failed');
ok(SmTest::can_login($node, $user, $pw), 'error: AWSCURRENT still logs in');
ok(!SmTest::can_login($node, 'guard_app', 'Manual-Drift-Pw-9'), 'error: the manual password does not');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_rotation_history h WHERE h::text LIKE '%Manual-Drift-Pw-9%'"),
	'0', 'error: no history row holds the password');

# every watched change, on the role and on the alternating clone
my @refused = (
	[ 'guard_app', 'ALTER ROLE guard_app NOLOGIN', 'ALTER ROLE ... NOLOGIN' ],
	[ 'guard_app', "ALTER ROLE guard_app VALID UNTIL '2000-01-01'", 'ALTER ROLE ... VALID UNTIL' ],
	[ 'guard_app', 'ALTER ROLE guard_app RENAME TO guard_renamed', 'ALTER ROLE ... RENAME' ],
	[ 'guard_app', 'DROP ROLE guard_app', 'DROP ROLE' ],
	[ 'guard_alt_clone', "ALTER USER guard_alt_clone ENCRYPTED PASSWORD 'Clone-Drift-Pw-8'",
		'ALTER ROLE ... PASSWORD' ],
	[ 'guard_alt_clone', 'DROP ROLE IF EXISTS guard_other, guard_alt_clone', 'DROP ROLE' ]);
foreach my $r (@refused)
{
	my ($role, $sql, $action) = @$r;
	($ret, $out, $err) = $node->psql('postgres', $sql);
	like($err, qr/role "$role" is managed by secretsmgr/, "error: $sql is refused");
	like(drift_rows($node, $role), qr/^refused\|\Q$action\E from outside secretsmgr\|postgres$/m,
		"error: $sql is recorded as $action");
}
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_roles WHERE rolname IN ('guard_app', 'guard_alt_clone', 'guard_other') "
		  . "AND rolcanlogin AND rolvaliduntil IS NULL"),
	'3', 'error: no refused statement changed a role (the DROP of two roles neither)');

# unwatched changes and unmanaged roles pass
$node->safe_psql('postgres', 'ALTER ROLE guard_app CONNECTION LIMIT 50');
$node->safe_psql('postgres', "ALTER ROLE guard_other PASSWORD 'Other-Pw-7'");
ok(SmTest::can_login($node, 'guard_other', 'Other-Pw-7'), 'error: an unmanaged role\'s password changes');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_rotation_history WHERE role_name IN ('guard_other') OR error LIKE '%CONNECTION%'"),
	'0', 'error: unwatched statements are not recorded');

# the rotation's own ALTER ROLE passes
my ($user_alt0, $pw_alt0) = SmTest::stage_creds('guard/alt');
$node->safe_psql('postgres', "SELECT secretsmgr_rotate('guard/app'); SELECT secretsmgr_rotate('guard/alt')");
my ($user1, $pw1) = SmTest::stage_creds('guard/app');
isnt($pw1, $pw, 'error: the rotation ran');
ok(SmTest::can_login($node, $user1, $pw1), 'error: the rotated password logs in');
my ($user_alt1, $pw_alt1) = SmTest::stage_creds('guard/alt');
isnt($user_alt1, $user_alt0, 'error: the alternating rotation set the other role');
ok(SmTest::can_login($node, $user_alt1, $pw_alt1), 'error: the alternating rotation logs in');

# a role that is not superuser may not switch the guard off
$node->safe_psql('postgres', 'GRANT ALL ON SCHEMA public TO guard_dba');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE guard_dba; SET secretsmgr.guard = off");
like($err, qr/permission denied to set parameter "secretsmgr.guard"/,
	'only a superuser may switch the guard off');

# --- warn mode: runs, warns, recorded; a rollback takes both away ------------
($ret, $out, $err) = $node->psql('postgres',
	"SET secretsmgr.guard = warn; ALTER ROLE guard_app VALID UNTIL 'infinity'");
is($ret, 0, 'warn: the statement runs');
like($err, qr/WARNING:  role "guard_app" is managed by secretsmgr/, 'warn: with a warning');
like($err, qr/HINT:  Bring them back together with secretsmgr_rotate\('guard\/app'\)/, 'warn: and a hint');
is($node->safe_psql('postgres', "SELECT rolvaliduntil FROM pg_roles WHERE rolname = 'guard_app'"),
	'infinity', 'warn: the change is made');
like(drift_rows($node, 'guard_app'), qr/\nwarned\|ALTER ROLE \.\.\. VALID UNTIL from outside secretsmgr\|postgres$/,
	'warn: and recorded');
my $rows_before = $node->safe_psql('postgres', 'SELECT count(*) FROM secretsmgr_rotation_history');
$node->psql('postgres',
	"SET secretsmgr.guard = warn; BEGIN; ALTER ROLE guard_app PASSWORD 'Rolled-Back-Pw-6'; ROLLBACK");
is($node->safe_psql('postgres', 'SELECT count(*) FROM secretsmgr_rotation_history'),
	$rows_before, 'warn: a rolled-back change leaves no record');
ok(SmTest::can_login($node, $user1, $pw1), 'warn: nor a changed password');

# --- a superuser switches it off: the switch and what runs are recorded --------
$node->safe_psql('postgres',
	"SET secretsmgr.guard = off; ALTER ROLE guard_app VALID UNTIL 'infinity'");
is($node->safe_psql('postgres',
		"SELECT status || '|' || error || '|' || executed_by || '|' || (secret_id IS NULL) "
		  . "FROM secretsmgr_rotation_history WHERE step = 'guard'"),
	'disabled|secretsmgr.guard switched off for this session|postgres|true',
	'off: the superuser\'s switch is recorded');
like(drift_rows($node, 'guard_app'),
	qr/\nallowed\|ALTER ROLE \.\.\. VALID UNTIL from outside secretsmgr\|postgres$/,
	'off: the statement it let through is recorded as allowed');

# --- stale clients -----------------------------------------------------------
# a session of the role, connected with the current password, then a rotation
my ($sin, $sout, $serr) = ('', '', '');
my $session = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', SmTest::login_connstr($node, $user1, $pw1),
	  '-c', 'SELECT pg_sleep(600)' ],
	'<', \$sin, '>', \$sout, '2>', \$serr);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'guard_app' AND state = 'active'")
  or die "the session of guard_app never showed up";
my $session_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE usename = 'guard_app' AND state = 'active'");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_stale_clients() WHERE role_name = 'guard_app' AND kind = 'session'"),
	'0', 'stale: no session is older than the rotation yet');

$node->safe_psql('postgres', "SELECT secretsmgr_rotate('guard/app')");
my ($user2, $pw2) = SmTest::stage_creds('guard/app');

# clients still using the old password: three failed logins
ok(!SmTest::can_login($node, 'guard_app', $pw1), "stale: the old password fails ($_)") for 1 .. 3;
ok(SmTest::can_login($node, $user2, $pw2), 'stale: the new password logs in (not counted)');
ok(!SmTest::can_login($node, 'guard_other', 'Wrong-Pw-5'), 'stale: a failed login of an unmanaged role');

is($node->safe_psql('postgres',
		"SELECT kind, client_addr, pid = $session_pid, backend_start < last_rotation, failed_logins "
		  . "FROM secretsmgr_stale_clients() WHERE role_name = 'guard_app' AND kind = 'session'"),
	"session|127.0.0.1|t|t|", 'stale: the session connected before the rotation is listed');
is($node->safe_psql('postgres',
		"SELECT secret_id, kind, client_addr, failed_logins, first_failed_at <= last_failed_at, "
		  . "first_failed_at >= last_rotation "
		  . "FROM secretsmgr_stale_clients() WHERE kind = 'failed_login'"),
	'guard/app|failed_login|127.0.0.1|3|t|t',
	'stale: the three failed logins with the old password are counted with their address (and nothing else)');
my $health = $node->safe_psql('postgres',
	"SELECT status || '|' || detail FROM secretsmgr_health() WHERE check_name = 'secret guard/app: stale clients'");
like($health, qr/^WARN\|role guard_app: 1 session began before the last rotation; role guard_app: 3 failed logins since the last rotation, from 127.0.0.1 \(3\)\. Hint: /,
	'stale: health warns about both');
like($node->safe_psql('postgres',
		"SELECT status || '|' || detail FROM secretsmgr_health() WHERE check_name = 'drift guard'"),
	qr/^OK\|secretsmgr.guard = error$/, 'health: the guard is on');

# the next rotation starts the count again; the old session is still listed
$node->safe_psql('postgres', "SELECT pg_terminate_backend($session_pid)");
$session->finish;
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'guard_app'")
  or die "the session of guard_app did not end";
$node->safe_psql('postgres', "SELECT secretsmgr_rotate('guard/app')");
is($node->safe_psql('postgres', "SELECT count(*) FROM secretsmgr_stale_clients() WHERE role_name = 'guard_app'"),
	'0', 'stale: a rotation starts the count again, and a closed session is gone');
like($node->safe_psql('postgres',
		"SELECT status || '|' || detail FROM secretsmgr_health() WHERE check_name = 'secret guard/app: stale clients'"),
	qr/^OK\|no session older than the last rotation, no failed login since it$/, 'stale: health is OK again');

my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$pw\E|\Q$pw1\E|\Q$pw2\E/, 'no rotated password in the server log');
$node->stop;

# --- plain: no preload ---------------------------------------------------------
my $plain = SmTest::new_node('plain', scram_hba => 1,
	conf => "secretsmgr.guard = error\n");
$plain->safe_psql('postgres', q{
	CREATE ROLE plain_app LOGIN;
	SELECT secretsmgr_manage('plain/app', 'plain_app');
	SELECT secretsmgr_rotate('plain/app');
});
my ($puser, $ppw) = SmTest::stage_creds('plain/app');
($ret, $out, $err) = $plain->psql('postgres', "ALTER ROLE plain_app VALID UNTIL 'infinity'");
is($ret, 0, 'plain: the guard is not there: the statement runs');
unlike($err, qr/managed by secretsmgr/, 'plain: without a warning');
is(drift_rows($plain, 'plain_app'), '', 'plain: nothing recorded');
ok(!SmTest::can_login($plain, 'plain_app', 'Wrong-Pw-4'), 'plain: a failed login');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT count(*) FROM secretsmgr_stale_clients()');
is($out, '0', 'plain: no failed login is listed');
like($err, qr/NOTICE:  failed logins are not counted\nDETAIL:  secretsmgr is not in shared_preload_libraries/,
	'plain: secretsmgr_stale_clients() says that they need the preload');
like($plain->safe_psql('postgres',
		"SELECT status || '|' || detail FROM secretsmgr_health() WHERE check_name = 'drift guard'"),
	qr/^OK\|not active: secretsmgr is not in shared_preload_libraries/, 'plain: health says the guard is not active');

# a session older than the rotation is listed without the preload too
my $psession = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', SmTest::login_connstr($plain, $puser, $ppw),
	  '-c', 'SELECT pg_sleep(600)' ],
	'<', \$sin, '>', \$sout, '2>', \$serr);
$plain->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'plain_app' AND state = 'active'")
  or die "the session of plain_app never showed up";
$plain->safe_psql('postgres', "SELECT secretsmgr_rotate('plain/app')");
is($plain->safe_psql('postgres',
		"SELECT kind || '|' || client_addr FROM secretsmgr_stale_clients()"),
	'session|127.0.0.1', 'plain: the session connected before the rotation is listed');
$plain->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'plain_app'");
$psession->finish;
$plain->stop;

done_testing();
