# The concurrent wait of secretsmgr_rotate_due() can be cancelled: while its
# BatchGetSecretValue calls are in flight (one answered, one that Secrets
# Manager never answers), pg_cancel_backend, statement_timeout and
# pg_terminate_backend end the statement at once, nothing is rotated, and
# the session (with its connections dropped) works afterwards.  The puts at
# commit are concurrent too, and a cancel ends their wait as well.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = SmTest::new_node('cancel_many',
	conf => "secretsmgr.request_timeout = '120s'\nsecretsmgr.max_attempts = 1\n"
	  . "secretsmgr.cache_ttl = 0\n");
SmTest::smctl('reset', '--state');

# 25 due secrets: two BatchGetSecretValue calls, both in flight at once
for my $i (1 .. 25)
{
	SmTest::smctl('create', sprintf('many/%02d', $i),
		sprintf('{"username":"many_%02d","password":"Many-Initial-Pw-%02d"}', $i, $i));
}
$node->safe_psql('postgres', q{
DO $$
BEGIN
	FOR i IN 1..25 LOOP
		EXECUTE format('CREATE ROLE %I LOGIN', 'many_' || lpad(i::text, 2, '0'));
		PERFORM secretsmgr_manage('many/' || lpad(i::text, 2, '0'),
								  'many_' || lpad(i::text, 2, '0'),
								  rotation_interval => '1 day');
	END LOOP;
END
$$;
});
my $due_sql = "SELECT count(*) FROM secretsmgr_rotate_due() WHERE status = 'rotated'";

# How many rotations are recorded?
sub rotations
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_rotation_history WHERE status = 'succeeded'");
}

# A session in secretsmgr_rotate_due() whose second batch call hangs for a
# minute; returns (harness, pid, stdout, stderr).
sub start_hung_rotate_due
{
	my ($in, $out, $err) = ('', '', '');
	my $calls = SmTest::smctl('calls', 'BatchGetSecretValue');
	SmTest::smctl('fault', 'BatchGetSecretValue', 'hang', '1', '--delay-ms', '60000');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $due_sql ],
		'<', \$in, '>', \$out, '2>', \$err);
	# both calls have reached the emulator: the wait is on the hung one
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%rotate_due%' "
		  . "AND state = 'active' AND pid <> pg_backend_pid()")
	  or die "the hung query never showed up";
	for (1 .. 100)
	{
		last if SmTest::smctl('calls', 'BatchGetSecretValue') >= $calls + 2;
		select(undef, undef, undef, 0.1);
	}
	select(undef, undef, undef, 0.3);
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '%rotate_due%' "
		  . "AND state = 'active' AND pid <> pg_backend_pid()");
	return ($h, $pid, \$out, \$err);
}

# pg_cancel_backend
{
	my ($h, $pid, $out, $err) = start_hung_rotate_due();
	my $t0 = time();
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$h->finish;
	my $elapsed = time() - $t0;
	like($$err, qr/canceling statement due to user request/,
		'pg_cancel_backend ends the concurrent wait');
	cmp_ok($elapsed, '<', 5, 'the cancel acts long before the 60 s hang');
	is(rotations(), '0', 'nothing was rotated');
}

# statement_timeout, then the same session rotates everything
{
	SmTest::smctl('fault', 'BatchGetSecretValue', 'hang', '1', '--delay-ms', '60000');
	my $t0 = time();
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '1s';\n$due_sql;\nRESET statement_timeout;\n$due_sql;",
		on_error_stop => 0);
	my $elapsed = time() - $t0;
	like($err, qr/canceling statement due to statement timeout/,
		'statement_timeout ends the concurrent wait');
	cmp_ok($elapsed, '<', 30, 'the timeout acts during the wait, not after it');
	like($out, qr/^25$/m, 'the next statement of the session rotates all 25');
}

# pg_terminate_backend ends the session at once
{
	$node->safe_psql('postgres',
		"UPDATE secretsmgr_managed SET rotation_interval = '1 second'");
	sleep 1;
	my ($h, $pid, $out, $err) = start_hung_rotate_due();
	my $t0 = time();
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	$h->finish;
	my $elapsed = time() - $t0;
	like($$err, qr/terminating connection due to administrator command|server closed the connection/,
		'pg_terminate_backend ends the concurrent wait');
	cmp_ok($elapsed, '<', 5, 'termination does not wait for the hang');
	is(rotations(), '25', 'the terminated call rotated nothing');
}

# The puts at commit are in flight together: with the first one hanging,
# the other 24 reach Secrets Manager during the wait (one at a time, none
# would before the hang ends).  A cancel then ends the commit, and the
# versions already made AWSCURRENT are moved back (docs/rotation.md): every
# role still logs in with what AWSCURRENT holds.
{
	$node->safe_psql('postgres',
		"UPDATE secretsmgr_managed SET rotation_interval = '1 second'");
	sleep 1;
	my $puts = SmTest::smctl('calls', 'PutSecretValue');
	SmTest::smctl('fault', 'PutSecretValue', 'hang', '1', '--delay-ms', '60000');
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $due_sql ],
		'<', \$in, '>', \$out, '2>', \$err);
	my $arrived = 0;
	for (1 .. 300)
	{
		$arrived = SmTest::smctl('calls', 'PutSecretValue') - $puts;
		last if $arrived >= 24;
		select(undef, undef, undef, 0.1);
	}
	cmp_ok($arrived, '>=', 24,
		'the other puts reach Secrets Manager while the first one hangs');
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '%rotate_due%' "
		  . "AND state = 'active' AND pid <> pg_backend_pid()");
	my $t0 = time();
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$h->finish;
	cmp_ok(time() - $t0, '<', 5, 'a cancel ends the wait for the puts at commit');
	like($err, qr/canceling statement due to user request/,
		'the cancelled commit says so');
	is(rotations(), '25', 'the cancelled call recorded no success');
	my $verified = 0;
	for (1 .. 300)
	{
		$verified = $node->safe_psql('postgres',
			"SELECT count(*) FROM secretsmgr_managed WHERE secretsmgr_verify(secret_id)");
		last if $verified == 25;
		select(undef, undef, undef, 0.2);
	}
	is($verified, '25',
		'AWSCURRENT of every secret was moved back and logs in as its role');
}

my $log = slurp_file($node->logfile);
unlike($log, qr/Many-Initial-Pw/, 'no secret value in the server log');
unlike($log, qr/TRAP|PANIC|terminated by signal/, 'no backend crashed');

$node->stop;
done_testing();
