# Every network wait can be cancelled: pg_cancel_backend, statement_timeout
# and pg_terminate_backend end a request that Secrets Manager never answers,
# and the session (and its reused connection) works afterwards.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = SmTest::new_node('cancel',
	conf => "secretsmgr.request_timeout = '120s'\nsecretsmgr.max_attempts = 1\n");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'cancel/app', '{"username":"app","password":"Cancel-Pw-123456"}');

# A session whose next request hangs for a minute; returns (harness, pid).
sub start_hung_query
{
	my ($sql) = @_;
	my ($in, $out, $err) = ('', '', '');
	SmTest::smctl('fault', 'GetSecretValue', 'hang', '1', '--delay-ms', '60000');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \$in, '>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%cancel/app%' "
		  . "AND state = 'active' AND pid <> pg_backend_pid()")
	  or die "the hung query never showed up";
	# let it get into the wait
	select(undef, undef, undef, 0.3);
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '%cancel/app%' "
		  . "AND state = 'active' AND pid <> pg_backend_pid()");
	return ($h, $pid, \$out, \$err);
}

# pg_cancel_backend
{
	my ($h, $pid, $out, $err) =
	  start_hung_query("SELECT secretsmgr_get_secret('cancel/app') ->> 'username'");
	my $t0 = time();
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$h->finish;
	my $elapsed = time() - $t0;
	like($$err, qr/canceling statement due to user request/, 'pg_cancel_backend cancels a hung request');
	cmp_ok($elapsed, '<', 5, 'the cancelled request ends long before the 60 s hang');
	diag(sprintf("cancel took %.0f ms", $elapsed * 1000));
}

# statement_timeout
{
	my $t0 = time();
	SmTest::smctl('fault', 'GetSecretValue', 'hang', '1', '--delay-ms', '60000');
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '500ms'; SELECT secretsmgr_get_secret('cancel/app') ->> 'username'");
	my $elapsed = time() - $t0;
	like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends a hung request');
	cmp_ok($elapsed, '<', 5, 'statement_timeout acts during the wait, not after it');
}

# the same session goes on working after a cancel: the handle was reset
{
	SmTest::smctl('fault', 'GetSecretValue', 'hang', '1', '--delay-ms', '60000');
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '300ms';\n"
		  . "SELECT secretsmgr_get_secret('cancel/app') ->> 'username';\n"
		  . "RESET statement_timeout;\n"
		  . "SELECT secretsmgr_cache_invalidate() >= 0;\n"
		  . "SELECT secretsmgr_get_secret('cancel/app') ->> 'username';",
		on_error_stop => 0);
	like($err, qr/statement timeout/, 'first statement timed out');
	like($out, qr/^t\napp$/m, 'the next request in the same session succeeds');
}

# pg_terminate_backend ends the session at once
{
	my ($h, $pid, $out, $err) =
	  start_hung_query("SELECT secretsmgr_get_secret('cancel/app') ->> 'username'");
	my $t0 = time();
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	$h->finish;
	my $elapsed = time() - $t0;
	like($$err, qr/terminating connection due to administrator command|server closed the connection/,
		'pg_terminate_backend ends a hung request');
	cmp_ok($elapsed, '<', 5, 'termination does not wait for the hang');
}

# the server is healthy afterwards, and nothing secret reached its log
is($node->safe_psql('postgres', "SELECT secretsmgr_get_secret('cancel/app') ->> 'username'"),
	'app', 'reads work after all of the above');
my $log = slurp_file($node->logfile);
unlike($log, qr/Cancel-Pw-123456/, 'no secret value in the server log');
unlike($log, qr/TRAP|PANIC|terminated by signal/, 'no backend crashed');

$node->stop;
done_testing();
