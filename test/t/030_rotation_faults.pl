# The rotation invariant under faults: for both Secrets Manager calls a
# rotation makes (GetSecretValue of AWSCURRENT, then PutSecretValue of the
# new version at pre-commit) and every way each can fail (throttled past the
# retries, 500, dropped connection, hung past request_timeout, cancelled),
# the failure is recorded in secretsmgr_rotation_history, the password
# AWSCURRENT holds still logs in (a real libpq login), and the next rotation
# succeeds.  Also: a rotation makes exactly those two calls (counted by the
# emulator, both strategies); a put whose answer is lost is retried with the
# same token and makes one version; two sessions rotating one secret
# serialise, different secrets do not; and no password the test saw ever
# reaches the server log.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = SmTest::new_node('faults',
	scram_hba => 1,
	conf => "secretsmgr.max_attempts = 2\n"
	  . "secretsmgr.request_timeout = '1s'\n"
	  . "secretsmgr.cache_ttl = 0\n");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'faults/app',
	'{"engine":"postgres","host":"127.0.0.1","username":"fault_app","password":"Faults-Initial-Pw-1"}');
SmTest::smctl('create', 'faults/other',
	'{"engine":"postgres","host":"127.0.0.1","username":"fault_other","password":"Faults-Other-Pw-2"}');
$node->safe_psql('postgres', q{
	CREATE ROLE fault_app LOGIN;
	CREATE ROLE fault_other LOGIN;
	SELECT secretsmgr_manage('faults/app', 'fault_app');
	SELECT secretsmgr_manage('faults/other', 'fault_other');
	SELECT secretsmgr_rotate('faults/app');
	SELECT secretsmgr_rotate('faults/other');
});

# The credentials a stage of the secret holds now (read from the emulator,
# never through SQL text).
sub creds
{
	my ($secret, $stage) = @_;
	$stage //= 'AWSCURRENT';
	my $out = $node->safe_psql('postgres',
		"SELECT s ->> 'username', s ->> 'password' FROM "
		  . "(SELECT secretsmgr_get_secret('$secret', '$stage') AS s) x");
	my ($user, $pw) = split /\|/, $out, 2;
	return ($user, $pw);
}

sub stage_version
{
	my ($secret, $stage) = @_;
	return $node->safe_psql('postgres',
		"SELECT key FROM jsonb_each(secretsmgr_describe_secret('$secret') -> 'VersionIdsToStages') "
		  . "WHERE value ? '$stage'");
}

sub current_version
{
	return stage_version($_[0], 'AWSCURRENT');
}

sub failed_rows
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_rotation_history WHERE status = 'failed'");
}

# AWSCURRENT logs in as its role; if not, one reconcile must make it so.
sub check_invariant
{
	my ($what) = @_;
	my ($user, $pw) = creds('faults/app');
	if (SmTest::can_login($node, $user, $pw))
	{
		pass("$what: AWSCURRENT logs in");
		return;
	}
	$node->safe_psql('postgres', "SELECT secretsmgr_reconcile('faults/app')");
	($user, $pw) = creds('faults/app');
	ok(SmTest::can_login($node, $user, $pw), "$what: AWSCURRENT logs in after reconcile");
}

# A rotation after the fault has cleared completes, and only the new
# password logs in.
sub check_next_rotation
{
	my ($what) = @_;
	SmTest::smctl('reset');
	my ($user, $old) = creds('faults/app');
	$node->safe_psql('postgres', "SELECT secretsmgr_rotate('faults/app')");
	my ($user2, $new) = creds('faults/app');
	ok(SmTest::can_login($node, $user2, $new), "$what: the next rotation's password logs in");
	ok(!SmTest::can_login($node, $user, $old), "$what: the replaced password no longer does");
}

# Queue the fault so it hits the n-th call of op in this rotation
# (earlier calls get a harmless 1 ms delay).
sub queue_fault
{
	my ($op, $nth, $fault, $count, @extra) = @_;
	SmTest::smctl('reset');
	SmTest::smctl('fault', $op, 'delay', $nth - 1, '--delay-ms', '1') if $nth > 1;
	SmTest::smctl('fault', $op, $fault, $count, @extra);
}

# Every call a rotation makes, in order: [operation, nth call of it, step]
my @calls = (
	[ 'GetSecretValue', 1, 'createSecret' ],    # AWSCURRENT
	[ 'PutSecretValue', 1, 'finishSecret' ],    # at pre-commit
);

# The Secrets Manager calls of one statement, counted by the emulator.
sub calls_of
{
	my ($sql) = @_;
	SmTest::smctl('reset');
	$node->safe_psql('postgres', $sql);
	my $calls = SmTest::admin('GET', 'calls')->{calls};
	return join(' ', map { "$_=$calls->{$_}" } sort keys %$calls);
}

# Two calls per rotation, whatever the strategy: nothing else is read or
# written, and nothing at all before the commit but the read.
{
	SmTest::smctl('create', 'faults/alt',
		'{"engine":"postgres","host":"127.0.0.1","username":"fault_alt","password":"Faults-Alt-Pw-3"}');
	$node->safe_psql('postgres', q{
		CREATE ROLE fault_alt LOGIN;
		SELECT secretsmgr_manage('faults/alt', 'fault_alt', 'alternating');
	});
	foreach my $secret ('faults/app', 'faults/alt')
	{
		foreach my $round (1 .. 2)
		{
			is(calls_of("SELECT secretsmgr_rotate('$secret')"),
				'GetSecretValue=1 PutSecretValue=1',
				"$secret rotation $round: two calls, GetSecretValue and PutSecretValue");
			my ($user, $pw) = creds($secret);
			ok(SmTest::can_login($node, $user, $pw), "$secret rotation $round: AWSCURRENT logs in");
		}
	}
	is( calls_of("BEGIN; SELECT secretsmgr_rotate('faults/app'); ROLLBACK;"),
		'GetSecretValue=1',
		'a rolled-back rotation only read AWSCURRENT: nothing was written');
	is( calls_of("BEGIN; SELECT secretsmgr_rotate('faults/app'); SELECT secretsmgr_rotate('faults/app'); COMMIT;"),
		'GetSecretValue=2 PutSecretValue=1',
		'two rotations of one secret in one transaction put one version');
}

# A put whose answer is lost is sent again with the same token and value:
# Secrets Manager answers the retry as a success and makes no second
# version.
{
	SmTest::smctl('reset');
	my $nversions = sub {
		scalar @{ SmTest::secret_state('faults/app')->{Versions} };
	};
	my $before = $nversions->();
	my $previous = current_version('faults/app');
	SmTest::smctl('fault', 'PutSecretValue', 'lost_answer', 1);
	my $v = $node->safe_psql('postgres', "SELECT secretsmgr_rotate('faults/app')");
	cmp_ok(SmTest::smctl('calls', 'PutSecretValue'), '>=', 2,
		'lost answer: the put was sent again');
	is(current_version('faults/app'), $v, 'lost answer: the rotation committed and its version is AWSCURRENT');
	is(stage_version('faults/app', 'AWSPREVIOUS'), $previous, 'lost answer: the version before is AWSPREVIOUS');
	is($nversions->(), $before + 1, 'lost answer: exactly one new version');
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM secretsmgr_rotation_history WHERE new_version_id = '$v'"),
		'1', 'lost answer: one history row, succeeded');
	my ($user, $pw) = creds('faults/app');
	ok(SmTest::can_login($node, $user, $pw), 'lost answer: AWSCURRENT logs in');
	check_invariant('lost answer');

	# every answer lost: the put took effect but the transaction aborted
	SmTest::smctl('reset');
	SmTest::smctl('fault', 'PutSecretValue', 'lost_answer', 6);
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT secretsmgr_rotate('faults/app')");
	SmTest::smctl('reset');
	like($err, qr/ERROR:.*PutSecretValue/s, 'every answer lost: the rotation fails naming PutSecretValue');
	check_invariant('every answer lost');
	check_next_rotation('every answer lost');
}
# fault, how many to queue (max_attempts is 2; libcurl silently retries a
# dropped kept-alive connection once), expected SQLSTATE class
my @faults = (
	[ 'throttle', 2, [] ],
	[ 'error500', 2, [] ],
	[ 'drop', 4, [] ],
	[ 'hang', 2, [ '--delay-ms', '60000' ] ],
);

foreach my $call (@calls)
{
	my ($op, $nth, $step) = @$call;
	foreach my $f (@faults)
	{
		my ($fault, $count, $extra) = @$f;
		my $what = "$op #$nth $fault";
		my $before = current_version('faults/app');
		my $failed_before = failed_rows();

		queue_fault($op, $nth, $fault, $count, @$extra);
		my ($ret, $out, $err) = $node->psql('postgres',
			"SELECT secretsmgr_rotate('faults/app');\n"
			  . "SELECT count FROM secretsmgr_stats() WHERE name = 'rotate:failed';",
			on_error_stop => 0);
		SmTest::smctl('reset');    # faults not consumed must not hit the checks
		like($err, qr/ERROR:.*$op/s, "$what: the rotation fails naming $op");
		is($out, '1', "$what: the failure is counted in secretsmgr_stats()");
		is(current_version('faults/app'), $before, "$what: AWSCURRENT did not move");
		is(failed_rows(), $failed_before + 1, "$what: one failure row in the history");
		is( $node->safe_psql('postgres',
				"SELECT step FROM secretsmgr_rotation_history ORDER BY id DESC LIMIT 1"),
			$step, "$what: the row names step $step");
		check_invariant($what);
		check_next_rotation($what);
	}
}

# Cancel (pg_cancel_backend) while each call hangs.
foreach my $call (@calls)
{
	my ($op, $nth, $step) = @$call;
	my $what = "$op #$nth cancelled";
	my $before = current_version('faults/app');
	my $failed_before = failed_rows();

	queue_fault($op, $nth, 'hang', 1, '--delay-ms', '60000');
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
			'-c', "SET secretsmgr.request_timeout = '60s'; SELECT secretsmgr_rotate('faults/app')" ],
		'<', \$in, '>', \$out, '2>', \$err);
	# wait until the hung call has reached the emulator
	foreach (1 .. 200)
	{
		last if SmTest::smctl('calls', $op) >= $nth;
		usleep(50_000);
	}
	usleep(300_000);
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '%secretsmgr_rotate(''faults/app'')%' "
		  . "AND pid <> pg_backend_pid()");
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$h->finish;
	SmTest::smctl('reset');
	like($err, qr/canceling statement due to user request/, "$what: the rotation is cancelled");
	is(current_version('faults/app'), $before, "$what: AWSCURRENT did not move");
	is(failed_rows(), $failed_before + 1, "$what: one failure row in the history");
	is( $node->safe_psql('postgres',
			"SELECT step || ' ' || sqlstate FROM secretsmgr_rotation_history ORDER BY id DESC LIMIT 1"),
		"$step 57014", "$what: the row names step $step and SQLSTATE 57014");
	check_invariant($what);
	check_next_rotation($what);
}

# Two sessions rotating one secret serialise; another secret is not blocked.
{
	SmTest::smctl('reset');
	my $a = $node->background_psql('postgres');
	$a->query_safe("BEGIN");
	my $v1 = $a->query_safe("SELECT secretsmgr_rotate('faults/app')");
	my ($in, $out, $err) = ('', '', '');
	my $b = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
			'-c', "SELECT secretsmgr_rotate('faults/app')" ],
		'<', \$in, '>', \$out, '2>', \$err);
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
		'a second rotation of the same secret waits for the first');
	is($node->safe_psql('postgres', "SELECT length(secretsmgr_rotate('faults/other'))"),
		'36', 'a rotation of another secret goes ahead meanwhile');
	$a->query_safe("COMMIT");
	$b->finish;
	chomp $out;
	$a->quit;
	isnt($out, $v1, 'the waiting rotation then makes a version of its own');
	is(current_version('faults/app'), $out, 'its version is AWSCURRENT');
	my ($user, $pw) = creds('faults/app');
	ok(SmTest::can_login($node, $user, $pw), 'and logs in');
	is(stage_version('faults/app', 'AWSPREVIOUS'), $v1, 'AWSPREVIOUS is the first rotation');
}

# No password the test saw (every value the emulator ever stored) is in the
# server log.
my @values = grep { length($_) >= 8 } split /\n/, SmTest::smctl('secret-values');
cmp_ok(scalar(@values), '>', 40, 'the emulator lists the passwords of every rotation');
my $log = slurp_file($node->logfile);
my @leaks = grep { index($log, $_) >= 0 } @values;
is(scalar(@leaks), 0, 'no password appears in the server log');
unlike($log, qr/TRAP|PANIC|terminated by signal/, 'no backend crashed');

$node->stop;
done_testing();
