# Cluster-wide statistics (shared_preload_libraries), secretsmgr.log_reads
# and rotation events (NOTIFY secretsmgr_rotation).
#
# On a preloaded cluster: reads from several backends add up per role and
# secret and stay after those backends exit; a live backend's reads show
# once its transaction ended; retries, errors by AWS error type, rotations
# succeeded and failed are counted; reset empties the table; only
# pg_read_all_stats reads it and only a superuser (or a grantee) resets it.
# On a plain cluster the functions say that the library must be preloaded,
# and so does secretsmgr_health().  On both: a LISTENing session receives
# exactly one event per committed rotation (secretsmgr_rotate, rotate_due,
# reconcile) and none for a rolled-back one; secretsmgr.log_reads writes
# one line per read, never the value.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;

my $pre = SmTest::new_node('cstats_pre',
	conf => "shared_preload_libraries = 'secretsmgr'\n"
	  . "secretsmgr.max_attempts = 3\n");
my $plain = SmTest::new_node('cstats_plain');
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'cs/read', '{"username":"cs_x","password":"Cstats-Read-Value-4711"}');

$pre->safe_psql('postgres', q{
	CREATE ROLE cs_reader LOGIN;
	CREATE ROLE cs_watcher LOGIN IN ROLE pg_read_all_stats;
	CREATE ROLE cs_nobody LOGIN;
	GRANT EXECUTE ON FUNCTION secretsmgr_get_secret(text, text, text) TO cs_reader, cs_watcher;
	SELECT secretsmgr_cluster_stats_reset();
});

my $bootstrap = $pre->safe_psql('postgres', 'SELECT current_user');

# one key's counters: "calls|cache_hits|cache_misses|errors|retries"
sub key_counts
{
	my ($role, $secret, $op) = @_;
	return $pre->safe_psql('postgres', qq{
		SELECT coalesce(sum(calls), 0) || '|' || coalesce(sum(cache_hits), 0) || '|'
			|| coalesce(sum(cache_misses), 0) || '|' || coalesce(sum(errors), 0) || '|'
			|| coalesce(sum(retries), 0)
		FROM secretsmgr_cluster_stats
		WHERE database = 'postgres' AND role_name = '$role'
		  AND secret_id = '$secret' AND operation = '$op'});
}

# --- several backends add up, and their counts outlive them ------------------
$pre->safe_psql('postgres',
	"SELECT secretsmgr_get_secret('cs/read'); SELECT secretsmgr_get_secret('cs/read');");
$pre->safe_psql('postgres',
	"SELECT secretsmgr_get_secret('cs/read') FROM generate_series(1, 3);");
$pre->safe_psql('postgres', "SET ROLE cs_reader; SELECT secretsmgr_get_secret('cs/read');");
is(key_counts($bootstrap, 'cs/read', 'GetSecretValue'), '2|3|2|0|0',
	'two exited backends: 2 calls, 3 hits, 2 misses');
is(key_counts('cs_reader', 'cs/read', 'GetSecretValue'), '1|0|1|0|0',
	'the other role is counted apart');
is($pre->safe_psql('postgres', q{
	SELECT min_ms > 0 AND max_ms >= min_ms AND mean_ms BETWEEN min_ms AND max_ms
	   AND total_ms >= max_ms
	FROM secretsmgr_cluster_stats WHERE role_name = current_user
	  AND secret_id = 'cs/read' AND operation = 'GetSecretValue'}),
	't', 'latency total, min, max and mean agree');

# a live backend: its reads show once its transaction ends, before it exits
my ($in, $out, $err) = ('', '', '');
my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
my $live = IPC::Run::start(['psql', '-XAtq', '-d', $pre->connstr('postgres')],
	'<', \$in, '>', \$out, '2>', \$err, $timer);
$in .= "SELECT count(secretsmgr_get_secret('cs/read')) FROM generate_series(1, 5);\n";
$live->pump until $out =~ /^5$/m || $timer->is_expired;
is(key_counts($bootstrap, 'cs/read', 'GetSecretValue'), '3|7|3|0|0',
	'a live backend\'s committed reads are counted');
$in .= "\\q\n";
$live->finish;

# retries and errors by AWS error type
SmTest::fault_on('GetSecretValue', 'throttle', 1);
$pre->safe_psql('postgres', "SET secretsmgr.cache_ttl = 0; SELECT secretsmgr_get_secret('cs/read');");
is(key_counts($bootstrap, 'cs/read', 'GetSecretValue'), '4|7|4|0|1',
	'a throttled attempt that was retried is one call with one retry, no error');
$pre->psql('postgres', "SELECT secretsmgr_get_secret('cs/missing')");
$pre->psql('postgres', "SELECT secretsmgr_get_secret('cs/missing')");
is($pre->safe_psql('postgres', q{
	SELECT calls || '|' || errors || '|' || error_types::text || '|' || last_error_type
	       || '|' || (last_error_at > now() - interval '1 minute')
	FROM secretsmgr_cluster_stats WHERE secret_id = 'cs/missing'}),
	'2|2|{"ResourceNotFoundException": 2}|ResourceNotFoundException|true',
	'errors are counted by AWS error type, with the last one');

# --- rotations: succeeded and failed, per managed secret ---------------------
SmTest::smctl('create', 'cs/app',
	'{"engine":"postgres","host":"127.0.0.1","username":"cs_app","password":"Cstats-Initial-1"}');
$pre->safe_psql('postgres',
	"CREATE ROLE cs_app LOGIN; SELECT secretsmgr_manage('cs/app', 'cs_app');");
$pre->safe_psql('postgres', "SELECT secretsmgr_rotate('cs/app')");
$pre->safe_psql('postgres', "BEGIN; SELECT secretsmgr_rotate('cs/app'); ROLLBACK;");
SmTest::fault_on('PutSecretValue', 'access_denied', 1);
$pre->psql('postgres', "SELECT secretsmgr_rotate('cs/app')");
is($pre->safe_psql('postgres', q{
	SELECT rotations_succeeded || '|' || rotations_failed || '|'
	       || (last_rotation_succeeded_at IS NOT NULL) || '|' || (last_rotation_failed_at IS NOT NULL)
	FROM secretsmgr_cluster_stats WHERE secret_id = 'cs/app' AND operation = 'rotate'}),
	'1|1|true|true',
	'one committed rotation succeeded, one failed, the rolled-back one is neither');

# --- the daily checklist of docs/runbook.md, on this preloaded cluster -------
my $runbook;
foreach my $d ($ENV{SM_SOURCE_ROOT}, SmTest::test_root() . '/..', $ENV{OLDPWD})
{
	$runbook = "$d/docs/runbook.md" if !$runbook && defined $d && -f "$d/secretsmgr.control";
}
my ($checklist) = slurp_file($runbook) =~ /^## Daily checklist\n(.*?)^## /ms;
my @queries = ($checklist // '') =~ /^```sql\n(.*?)^```$/msg;
is(scalar(@queries), 5, 'the runbook\'s daily checklist has five queries');
foreach my $q (@queries)
{
	my ($first) = $q =~ /^(.*)$/m;
	my ($r, $rows, $qerr) = $pre->psql('postgres', $q);
	ok($r == 0 && $rows ne '', "checklist query answers: $first") or diag($qerr);
}
like($pre->safe_psql('postgres', $queries[2]),
	qr/^postgres\|\Q$bootstrap\E\|cs\/read\|7\|4\|0\|63\.64$/m,
	'the cache hit rate query: 7 hits of 11 reads');

# --- who may read and reset -------------------------------------------------
my ($ret, $o, $e) = $pre->psql('postgres',
	'SET ROLE cs_nobody; SELECT count(*) FROM secretsmgr_cluster_stats');
like($e, qr/permission denied/, 'a role without pg_read_all_stats cannot read them');
is($pre->safe_psql('postgres',
	'SET ROLE cs_watcher; SELECT count(*) > 0 FROM secretsmgr_cluster_stats'),
	't', 'a member of pg_read_all_stats reads them');
($ret, $o, $e) = $pre->psql('postgres',
	'SET ROLE cs_watcher; SELECT secretsmgr_cluster_stats_reset()');
like($e, qr/permission denied for function secretsmgr_cluster_stats_reset/,
	'reading does not give reset');
$pre->safe_psql('postgres', 'SELECT secretsmgr_cluster_stats_reset()');
is($pre->safe_psql('postgres', 'SELECT count(*) FROM secretsmgr_cluster_stats'),
	'0', 'reset empties the table');
like($pre->safe_psql('postgres',
	"SELECT status || ': ' || detail FROM secretsmgr_health() WHERE check_name = 'cluster statistics'"),
	qr/^OK: on: \d+ of 5000 entries in use since /, 'health: on');

# --- a plain cluster says the library must be preloaded ---------------------
($ret, $o, $e) = $plain->psql('postgres', 'SELECT * FROM secretsmgr_cluster_stats');
like($e, qr/ERROR:  secretsmgr_cluster_stats\(\) needs secretsmgr in shared_preload_libraries/,
	'without preload the view raises a clear error');
like($e, qr/HINT:  Add secretsmgr to shared_preload_libraries/, 'with the hint');
($ret, $o, $e) = $plain->psql('postgres', 'SELECT secretsmgr_cluster_stats_reset()');
like($e, qr/needs secretsmgr in shared_preload_libraries/, 'and so does reset');
like($plain->safe_psql('postgres',
	"SELECT status || ': ' || detail FROM secretsmgr_health() WHERE check_name = 'cluster statistics'"),
	qr/^OK: off: secretsmgr is not in shared_preload_libraries/, 'health says it is off');
is($plain->safe_psql('postgres',
	"SELECT count(*) > 0 FROM (SELECT secretsmgr_get_secret('cs/read')) r, secretsmgr_stats() s WHERE s.name = 'GetSecretValue'"),
	't', 'the per-session secretsmgr_stats() works without preload');

# --- secretsmgr.log_reads ---------------------------------------------------
my $version = (SmTest::stage_creds('cs/read'))[2];
my $offset = -s $plain->logfile;
$plain->safe_psql('postgres', q{
	SET secretsmgr.log_reads = on;
	SELECT secretsmgr_cache_invalidate();
	SELECT secretsmgr_get_secret('cs/read');
	SELECT secretsmgr_get_secret_string('cs/read');
	SELECT * FROM secretsmgr_get_secrets(ARRAY['cs/read']);
});
my $log = slurp_file($plain->logfile, $offset);
my @lines = ($log =~ /^.*secretsmgr: role "\Q$bootstrap\E" read secret "cs\/read".*$/mg);
is(scalar(@lines), 3, 'one log line per read');
like($lines[0], qr/stage AWSCURRENT, version \Q$version\E, from Secrets Manager$/,
	'the first read came from Secrets Manager, with its version');
like($lines[1], qr/stage AWSCURRENT, version \Q$version\E, from cache$/, 'the next from the cache');
like($lines[2], qr/from cache$/, 'secretsmgr_get_secrets() reads are logged too');
unlike($log, qr/Cstats-Read-Value-4711/, 'the value is not in the log');
($ret, $o, $e) = $plain->psql('postgres',
	"CREATE ROLE cs_user LOGIN; SELECT count(*) FROM secretsmgr_stats(); "
	  . "SET ROLE cs_user; SET secretsmgr.log_reads = off;");
like($e, qr/permission denied to set parameter "secretsmgr.log_reads"/,
	'only a superuser switches it');

# --- rotation events ----------------------------------------------------------
foreach my $node ($plain, $pre)
{
	my $name = $node == $pre ? 'preloaded' : 'plain';
	my $secret = "ev/$name";
	SmTest::smctl('create', $secret,
		qq({"engine":"postgres","host":"127.0.0.1","username":"ev_$name","password":"Events-Initial-1"}));
	$node->safe_psql('postgres', qq{
		CREATE ROLE ev_$name LOGIN;
		SELECT secretsmgr_manage('$secret', 'ev_$name', 'single', interval '1 day');
	});

	my ($lin, $lout, $lerr) = ('', '', '');
	my $t = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	my $listener = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres')],
		'<', \$lin, '>', \$lout, '2>', \$lerr, $t);
	$lin .= "LISTEN secretsmgr_rotation;\nSELECT 'listening';\n";
	$listener->pump until $lout =~ /^listening$/m || $t->is_expired;

	my @committed;
	push @committed, $node->safe_psql('postgres', "SELECT secretsmgr_rotate('$secret')");
	$node->safe_psql('postgres', "BEGIN; SELECT secretsmgr_rotate('$secret'); ROLLBACK;");
	$node->safe_psql('postgres',
		"BEGIN; SAVEPOINT s; SELECT secretsmgr_rotate('$secret'); ROLLBACK TO s; COMMIT;");
	SmTest::fault_on('PutSecretValue', 'access_denied', 1);
	$node->psql('postgres', "SELECT secretsmgr_rotate('$secret')");
	# the scheduler's path: due because its interval has passed
	$node->safe_psql('postgres',
		"UPDATE secretsmgr_rotation_history SET finished_at = finished_at - interval '2 days', "
		  . "started_at = started_at - interval '2 days' WHERE secret_id = '$secret'");
	push @committed, $node->safe_psql('postgres',
		"SELECT version_id FROM secretsmgr_rotate_due() WHERE secret_id = '$secret'");
	# reconcile of a role left with AWSPREVIOUS's password
	my (undef, $previous) = SmTest::stage_creds($secret, 'AWSPREVIOUS');
	$node->safe_psql('postgres', "ALTER ROLE ev_$name PASSWORD '$previous'");
	my $recon = $node->safe_psql('postgres', "SELECT secretsmgr_reconcile('$secret')");

	$lin .= "SELECT 'done';\n";
	$listener->pump until $lout =~ /^done$/m || $t->is_expired;
	$lin .= "\\q\n";
	$listener->finish;

	my @payloads = ($lout =~
		  /^Asynchronous notification "secretsmgr_rotation" with payload "(.*)" received from server process with PID \d+\.$/mg);
	is(scalar(@payloads), 3, "$name: three committed password changes, three events")
	  or diag($lout);
	my @ev = map { decode_json($_) } @payloads;
	is_deeply([ map { $_->{version_id} } @ev[0, 1] ], \@committed,
		"$name: the events name the committed rotations' versions, in order");
	is_deeply([ map { $_->{via} } @ev ], [ 'sql', 'scheduler', 'sql' ],
		"$name: via sql, scheduler, sql");
	is_deeply([ map { $_->{step} } @ev ], [ 'finishSecret', 'finishSecret', 'reconcile' ],
		"$name: the steps");
	is($ev[2]{version_id}, $recon, "$name: reconcile's event names AWSCURRENT");
	ok((!grep { $_->{secret_id} ne $secret || $_->{role} ne "ev_$name" || $_->{strategy} ne 'single' } @ev),
		"$name: secret, role and strategy in every event");
	unlike($lout, qr/password|Events-/i, "$name: no password in any event");
}

$pre->stop;
$plain->stop;
done_testing();
