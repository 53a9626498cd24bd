# The rotation invariant across crashes: the rotating backend killed with
# SIGKILL while it waits on each of the two Secrets Manager calls (the
# emulator's delay fault holds it there, then performs the call anyway), and
# the whole server stopped in immediate mode during each.  After each, a
# real login proves that AWSCURRENT logs in as its role, or that one
# secretsmgr_reconcile makes it so (the pre-commit PutSecretValue landed and
# the commit never came: the role matches AWSPREVIOUS); the next rotation
# then succeeds.  No password reaches the server log.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $delay_ms = 3000;
my $node = SmTest::new_node('crash',
	scram_hba => 1,
	conf => "restart_after_crash = on\n" . "secretsmgr.cache_ttl = 0\n");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'crash/app',
	'{"engine":"postgres","host":"127.0.0.1","username":"crash_app","password":"Crash-Initial-Pw-1"}');
SmTest::smctl('create', 'crash/alt',
	'{"engine":"postgres","host":"127.0.0.1","username":"crash_alt","password":"Crash-Alt-Initial-Pw-2"}');
$node->safe_psql('postgres', q{
	CREATE ROLE crash_app LOGIN;
	CREATE ROLE crash_alt LOGIN;
	SELECT secretsmgr_manage('crash/app', 'crash_app');
	SELECT secretsmgr_manage('crash/alt', 'crash_alt', 'alternating');
	SELECT secretsmgr_rotate('crash/app');
	SELECT secretsmgr_rotate('crash/alt');
});

sub creds
{
	my ($secret, $stage) = @_;
	$stage //= 'AWSCURRENT';
	my $out = $node->safe_psql('postgres',
		"SELECT s ->> 'username', s ->> 'password' FROM "
		  . "(SELECT secretsmgr_get_secret('$secret', '$stage') AS s) x");
	return split /\|/, $out, 2;
}

sub stage_version
{
	my ($secret, $stage) = @_;
	return $node->safe_psql('postgres',
		"SELECT key FROM jsonb_each(secretsmgr_describe_secret('$secret') -> 'VersionIdsToStages') "
		  . "WHERE value ? '$stage'");
}

sub current_logs_in
{
	my ($secret) = @_;
	my ($user, $pw) = creds($secret);
	return SmTest::can_login($node, $user, $pw);
}

# Start a rotation that stops at the n-th call of op (a delay fault), and
# return (harness, backend pid, stderr ref) once it waits there.
sub start_paused_rotation
{
	my ($secret, $op, $nth) = @_;
	SmTest::smctl('reset');
	SmTest::smctl('fault', $op, 'delay', $nth - 1, '--delay-ms', '1') if $nth > 1;
	SmTest::smctl('fault', $op, 'delay', '1', '--delay-ms', $delay_ms);
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
			'-c', "SELECT secretsmgr_rotate('$secret')" ],
		'<', \$in, '>', \$out, '2>', \$err);
	foreach (1 .. 200)
	{
		last if SmTest::smctl('calls', $op) >= $nth;
		usleep(50_000);
	}
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '%secretsmgr_rotate(''$secret'')%' "
		  . "AND pid <> pg_backend_pid()");
	return ($h, $pid, \$err);
}

# Wait for the server to accept connections after a crash restart, and for
# the emulator to finish the delayed call (it completes it even though the
# client went away).
sub settle
{
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
	usleep(($delay_ms + 500) * 1000);
	SmTest::smctl('reset');
}

# The invariant, then the next rotation.
sub check_after
{
	my ($secret, $what, $expect_reconcile) = @_;
	if ($expect_reconcile)
	{
		ok(!current_logs_in($secret),
			"$what: AWSCURRENT moved without the commit, so it does not log in yet");
		my ($ret, $out, $err) = $node->psql('postgres', "SELECT secretsmgr_reconcile('$secret')");
		is($ret, 0, "$what: secretsmgr_reconcile succeeds");
		like($err, qr/set the password of role/, "$what: reconcile says what it repaired");
	}
	ok(current_logs_in($secret), "$what: AWSCURRENT logs in");

	my ($user, $old) = creds($secret);
	$node->safe_psql('postgres', "SELECT secretsmgr_rotate('$secret')");
	ok(current_logs_in($secret), "$what: the next rotation's password logs in");
	my ($user2, $new) = creds($secret, 'AWSPREVIOUS');
	is($new, $old, "$what: the previous AWSCURRENT is now AWSPREVIOUS");
}

# SIGKILL of the rotating backend while it waits at each call.
my @calls = (
	[ 'GetSecretValue', 1, 0 ],    # AWSCURRENT: nothing was written
	[ 'PutSecretValue', 1, 1 ],    # the new version lands, the commit never comes
);
foreach my $c (@calls)
{
	my ($op, $nth, $expect_reconcile) = @$c;
	my $what = "SIGKILL at $op #$nth";
	my $versions = scalar @{ SmTest::secret_state('crash/app')->{Versions} };
	my ($h, $pid, $err) = start_paused_rotation('crash/app', $op, $nth);
	ok($pid =~ /^\d+$/, "$what: the rotation waits at the call");
	kill 'KILL', $pid;
	$h->finish;
	settle();
	is(scalar @{ SmTest::secret_state('crash/app')->{Versions} }, $versions + $expect_reconcile,
		$expect_reconcile ? "$what: the put made one version" : "$what: no version was made");
	check_after('crash/app', $what, $expect_reconcile);
}

# The same at the put with the "alternating" strategy: AWSCURRENT now names
# the other user, whose password never changed.
{
	my $what = 'alternating, SIGKILL at PutSecretValue';
	my ($h, $pid, $err) = start_paused_rotation('crash/alt', 'PutSecretValue', 1);
	my ($user_before) = creds('crash/alt');
	kill 'KILL', $pid;
	$h->finish;
	settle();
	my ($user_after) = creds('crash/alt');
	isnt($user_after, $user_before, "$what: AWSCURRENT names the other user");
	my ($puser, $ppw) = creds('crash/alt', 'AWSPREVIOUS');
	ok(SmTest::can_login($node, $puser, $ppw), "$what: the previous user still logs in");
	check_after('crash/alt', $what, 1);
}

# Immediate shutdown and restart during the pre-commit PutSecretValue.
{
	my $what = 'immediate stop during PutSecretValue';
	my ($h, $pid, $err) = start_paused_rotation('crash/app', 'PutSecretValue', 1);
	$node->stop('immediate');
	$h->finish;
	$node->start;
	settle();
	check_after('crash/app', $what, 1);
}

# Immediate shutdown and restart while AWSCURRENT is read: nothing about the
# rotation is visible in Secrets Manager afterwards.
{
	my $what = 'immediate stop during GetSecretValue';
	my $current = stage_version('crash/app', 'AWSCURRENT');
	my ($h, $pid, $err) = start_paused_rotation('crash/app', 'GetSecretValue', 1);
	$node->stop('immediate');
	$h->finish;
	$node->start;
	settle();
	is(stage_version('crash/app', 'AWSCURRENT'), $current, "$what: AWSCURRENT did not move");
	is(stage_version('crash/app', 'AWSPENDING'), '', "$what: no AWSPENDING version was left");
	check_after('crash/app', $what, 0);
}

my @values = grep { length($_) >= 8 } split /\n/, SmTest::smctl('secret-values');
cmp_ok(scalar(@values), '>', 10, 'the emulator lists the passwords of every rotation');
my $log = slurp_file($node->logfile);
my @leaks = grep { index($log, $_) >= 0 } @values;
is(scalar(@leaks), 0, 'no password appears in the server log');
like($log, qr/terminated by signal 9/, 'each killed backend is in the server log');

$node->stop;
done_testing();
