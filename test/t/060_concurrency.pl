# Concurrency: rotations of one secret serialise, rotations of different
# secrets do not wait for each other, a rotation racing a manual ALTER ROLE
# or DROP ROLE of its role fails cleanly or serialises, and applications
# reading the secret during a storm of rotations hold a password that logs
# in (alternating: always; single: again after one re-read).
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $storm = $ENV{SM_STORM_ROTATIONS} // 30;
my $t_start = time();
my %figures;

my $node = SmTest::new_node('concurrency',
	scram_hba => 1,
	conf => "max_connections = 60\n" . "log_min_messages = info\n");
SmTest::smctl('reset', '--state');

# A secret bound to a new role, rotated once so that the role has a password.
sub bind_secret
{
	my ($secret, $role, $strategy) = @_;
	SmTest::smctl('create', $secret,
		qq({"engine":"postgres","host":"127.0.0.1","username":"$role","password":"Conc-Initial-$role-Pw"}));
	$node->safe_psql('postgres', qq{
		CREATE ROLE $role LOGIN;
		SELECT secretsmgr_manage('$secret', '$role', '$strategy');
		SELECT secretsmgr_rotate('$secret');
	});
}

sub history_ids
{
	my ($secret) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(id), 0) FROM secretsmgr_rotation_history WHERE secret_id = '$secret'");
}

# AWSPENDING on a version other than AWSCURRENT?
sub orphan_pending
{
	my ($secret) = @_;
	my $m = SmTest::stage_map($secret);
	return scalar grep {
		my $st = $m->{$_};
		(grep { $_ eq 'AWSPENDING' } @$st) && !(grep { $_ eq 'AWSCURRENT' } @$st)
	} keys %$m;
}

# ---------------------------------------------------------------------------
# 1. N sessions rotating one secret, released together.
#
# The sessions are held at their first read of secretsmgr_managed by an
# ACCESS EXCLUSIVE lock on it (taken before any of them starts), so that all
# of them are inside secretsmgr_rotate when the lock goes; they then race for
# the rotation lock.
sub rotate_together
{
	my ($secret, $n) = @_;
	my $what = "$n sessions rotating $secret";
	my $v0 = (SmTest::stage_creds($secret, 'AWSCURRENT'))[2];
	my %versions_before = map { $_->{VersionId} => 1 } @{ SmTest::secret_state($secret)->{Versions} };
	my $last_id = history_ids($secret);
	SmTest::reset_emulator();

	my $gate = $node->background_psql('postgres');
	$gate->query_safe('BEGIN');
	$gate->query_safe('LOCK TABLE secretsmgr_managed IN ACCESS EXCLUSIVE MODE');
	my @runs = map { SmTest::start_psql($node, ["SELECT secretsmgr_rotate('$secret')"]) } 1 .. $n;
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = $n FROM pg_locks WHERE relation = 'secretsmgr_managed'::regclass AND NOT granted"),
		"$what: all $n wait at the gate");
	my $t0 = time();
	$gate->query_safe('COMMIT');
	$gate->quit;
	my (@out, @err);
	foreach my $r (@runs)
	{
		$r->{h}->finish;
		push @out, ${ $r->{out} } =~ s/\s+$//r;
		push @err, ${ $r->{err} };
	}
	my $elapsed = time() - $t0;
	is(join('', @err), '', "$what: no session got an error");
	my %distinct = map { $_ => 1 } @out;
	is(scalar(keys %distinct), $n, "$what: $n rotations, $n distinct new versions");

	# The history, in commit order: each rotation started from the version
	# the previous one made current (no lost update).
	my @rows = map { [ split /\|/ ] } split /\n/, $node->safe_psql('postgres',
		"SELECT new_version_id, previous_version_id, status FROM secretsmgr_rotation_history "
		  . "WHERE secret_id = '$secret' AND id > $last_id ORDER BY id");
	is(scalar(@rows), $n, "$what: $n history rows");
	is(scalar(grep { $_->[2] eq 'succeeded' } @rows), $n, "$what: all succeeded");
	my @chain = ($v0);
	my $linked = 1;
	foreach my $row (@rows)
	{
		$linked = 0 unless $row->[1] eq $chain[-1];
		push @chain, $row->[0];
	}
	ok($linked, "$what: each rotation replaced the version the previous one made current");
	is_deeply([ sort @chain[ 1 .. $n ] ], [ sort @out ], "$what: the chain is the versions the sessions returned");

	# Secrets Manager saw exactly two calls per rotation (one read, one
	# put that moves the labels), and the last version is current.
	is(SmTest::api_calls('GetSecretValue'), $n, "$what: $n GetSecretValue calls");
	is(SmTest::api_calls('PutSecretValue'), $n, "$what: $n PutSecretValue calls");
	is(SmTest::api_calls('UpdateSecretVersionStage'), 0, "$what: no stage move besides the puts");
	my @new_versions = grep { !$versions_before{$_} }
	  map { $_->{VersionId} } @{ SmTest::secret_state($secret)->{Versions} };
	is_deeply([ sort @new_versions ], [ sort @out ], "$what: no version beyond those $n was created");
	my ($user, $pw, $vcur) = SmTest::stage_creds($secret, 'AWSCURRENT');
	is($vcur, $chain[-1], "$what: AWSCURRENT is the last rotation's version");
	is((SmTest::stage_creds($secret, 'AWSPREVIOUS'))[2], $chain[-2], "$what: AWSPREVIOUS the one before");
	is(orphan_pending($secret), 0, "$what: no AWSPENDING left on a version that is not current");
	ok(SmTest::can_login($node, $user, $pw), "$what: the final AWSCURRENT logs in");
	$figures{"serialise $n $secret"} = sprintf('%.2f', $elapsed);
}

bind_secret('conc/same', 'conc_same', 'single');
bind_secret('conc/same_alt', 'conc_same_alt', 'alternating');
foreach my $n (2, 4, 8)
{
	rotate_together('conc/same', $n);
	rotate_together('conc/same_alt', $n);
}

# ---------------------------------------------------------------------------
# 2. Different secrets do not wait for each other: while one rotation is held
# at its pre-commit PutSecretValue, another secret rotates.
bind_secret('conc/slow', 'conc_slow', 'single');
bind_secret('conc/fast', 'conc_fast', 'single');
{
	my $delay_ms = 5000;
	SmTest::reset_emulator();
	SmTest::fault_on('PutSecretValue', 'delay', 1, delay_ms => $delay_ms, secret => 'conc/slow');
	my $slow = SmTest::start_psql($node, ["SELECT secretsmgr_rotate('conc/slow')"]);
	ok(SmTest::wait_for_call('PutSecretValue', 1), 'the slow rotation is held at PutSecretValue');
	my $held = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1397573458 AND granted");
	is($held, '1', 'it holds its rotation lock');
	my $t0 = time();
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT secretsmgr_rotate('conc/fast')");
	my $elapsed = time() - $t0;
	is($ret, 0, 'another secret rotates meanwhile');
	cmp_ok($elapsed, '<', $delay_ms / 2000, 'without waiting for the held one');
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
			  . "AND query LIKE '%secretsmgr_rotate(''conc/slow'')%'"),
		'1', 'the held rotation is still running when the other has finished');
	$slow->{h}->finish;
	is(${ $slow->{err} }, '', 'the held rotation then completes');
	ok(SmTest::stage_logs_in($node, 'conc/slow', 'AWSCURRENT'), 'both rotations log in: slow');
	ok(SmTest::stage_logs_in($node, 'conc/fast', 'AWSCURRENT'), 'both rotations log in: fast');
	$figures{'parallel'} = sprintf('%.3f', $elapsed);
}

# ---------------------------------------------------------------------------
# 3. A rotation racing a manual ALTER ROLE or DROP ROLE of its role.
bind_secret('conc/race', 'conc_race', 'single');

# After a race: no crash; AWSCURRENT logs in, or (a manual password won) one
# secretsmgr_rotate makes it so.
sub after_race
{
	my ($what) = @_;
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$what: the server is up");
	is(orphan_pending('conc/race'), 0, "$what: a failed rotation leaves no AWSPENDING");
	if (SmTest::stage_logs_in($node, 'conc/race', 'AWSCURRENT'))
	{
		pass("$what: AWSCURRENT logs in");
		return 'AWSCURRENT logs in';
	}
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT secretsmgr_reconcile('conc/race')");
	if ($ret == 0 && SmTest::stage_logs_in($node, 'conc/race', 'AWSCURRENT'))
	{
		pass("$what: AWSCURRENT logs in after secretsmgr_reconcile");
		return 'one secretsmgr_reconcile repairs it';
	}
	like($err, qr/ERROR:  .*(password|match)/, "$what: reconcile refuses to overwrite a manual password");
	($ret, $out, $err) = $node->psql('postgres', "SELECT secretsmgr_rotate('conc/race')");
	is($ret, 0, "$what: the next rotation succeeds") or diag($err);
	ok(SmTest::stage_logs_in($node, 'conc/race', 'AWSCURRENT'), "$what: and AWSCURRENT logs in");
	return 'reconcile refuses (no version matches the role\'s password), one secretsmgr_rotate repairs it';
}

# Wait until the backend running $text waits on a lock.
sub wait_blocked
{
	my ($text) = @_;
	$text =~ s/'/''/g;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
		  . "AND strpos(query, '$text') > 0");
}

my %race;
# 3a. ALTER ROLE first, uncommitted; the rotation waits for it.
{
	my $what = 'ALTER ROLE, then a rotation';
	my $m = $node->background_psql('postgres');
	$m->query_safe('BEGIN');
	$m->query_safe("ALTER ROLE conc_race PASSWORD 'Conc-Manual-Race-Pw-1'");
	my $r = SmTest::start_psql($node, ["SELECT secretsmgr_rotate('conc/race')"],
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	ok(wait_blocked("secretsmgr_rotate('conc/race')"), "$what: the rotation waits for the ALTER ROLE");
	$m->query_safe('COMMIT');
	$m->quit;
	$r->{h}->finish;
	my $err = ${ $r->{err} };
	if ($err eq '')
	{
		pass("$what: the rotation serialises after the ALTER ROLE");
	}
	else
	{
		like($err, qr/ERROR:  \w+: /, "$what: the rotation fails with an error");
		unlike($err, qr/ERROR:  XX000/, "$what: with a SQLSTATE a client can act on, not an internal error")
		  or diag("the rotation's error: $err");
		is( $node->safe_psql('postgres',
				"SELECT status FROM secretsmgr_rotation_history WHERE secret_id = 'conc/race' ORDER BY id DESC LIMIT 1"),
			'failed', "$what: the failure is in the history");
	}
	$race{$what} = ($err eq '' ? 'serialised' : 'failed: ' . ($err =~ /ERROR:  (\w+: [^\n]*)/)[0]);
	$race{$what} .= '; afterwards ' . after_race($what);
}

# 3b. A rotation first, uncommitted; the ALTER ROLE waits for it.
{
	my $what = 'a rotation, then ALTER ROLE';
	my $r = $node->background_psql('postgres');
	$r->query_safe('BEGIN');
	$r->query_safe("SELECT secretsmgr_rotate('conc/race')");
	my $m = SmTest::start_psql($node, ["ALTER ROLE conc_race PASSWORD 'Conc-Manual-Race-Pw-2'"],
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	ok(wait_blocked('ALTER ROLE conc_race'), "$what: the ALTER ROLE waits for the rotation");
	$r->query_safe('COMMIT');
	$r->quit;
	$m->{h}->finish;
	my $err = ${ $m->{err} };
	$race{$what} = ($err eq '' ? 'the ALTER ROLE serialised after the rotation'
		: 'the ALTER ROLE failed: ' . ($err =~ /ERROR:  (\w+: [^\n]*)/)[0]);
	$race{$what} .= '; afterwards ' . after_race($what);
}

# 3c. A rotation first, uncommitted; DROP ROLE waits for it.
{
	my $what = 'a rotation, then DROP ROLE';
	my $r = $node->background_psql('postgres');
	$r->query_safe('BEGIN');
	$r->query_safe("SELECT secretsmgr_rotate('conc/race')");
	my $m = SmTest::start_psql($node, ['DROP ROLE conc_race'],
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	ok(wait_blocked('DROP ROLE conc_race'), "$what: the DROP ROLE waits for the rotation");
	$r->query_safe('COMMIT');
	$r->quit;
	$m->{h}->finish;
	my $err = ${ $m->{err} };
	if ($err eq '')
	{
		$race{$what} = 'the DROP ROLE serialised after the rotation';
		$node->safe_psql('postgres', 'CREATE ROLE conc_race LOGIN');
	}
	else
	{
		$race{$what} = 'the DROP ROLE failed: ' . ($err =~ /ERROR:  (\w+: [^\n]*)/)[0];
	}
	$race{$what} .= '; afterwards ' . after_race($what);
}

# 3d. DROP ROLE first, uncommitted; the rotation waits for it and then finds
# no role.
{
	my $what = 'DROP ROLE, then a rotation';
	my $m = $node->background_psql('postgres');
	$m->query_safe('BEGIN');
	$m->query_safe('DROP ROLE conc_race');
	my $r = SmTest::start_psql($node, ["SELECT secretsmgr_rotate('conc/race')"],
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	ok(wait_blocked("secretsmgr_rotate('conc/race')"), "$what: the rotation waits for the DROP ROLE");
	$m->query_safe('COMMIT');
	$m->quit;
	$r->{h}->finish;
	my $err = ${ $r->{err} };
	like($err, qr/ERROR:  \w+: /, "$what: the rotation fails");
	unlike($err, qr/ERROR:  XX000/, "$what: with a SQLSTATE a client can act on, not an internal error")
	  or diag("the rotation's error: $err");
	is( $node->safe_psql('postgres',
			"SELECT status FROM secretsmgr_rotation_history WHERE secret_id = 'conc/race' ORDER BY id DESC LIMIT 1"),
		'failed', "$what: the failure is in the history");
	my ($ret, $out, $err2) = $node->psql('postgres', "SELECT secretsmgr_rotate('conc/race')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err2, qr/ERROR:  42704: /, "$what: later rotations say the role does not exist");
	$race{$what} = 'failed: ' . (($err =~ /ERROR:  (\w+: [^\n]*)/)[0] // '?');
	# the operator recreates the role
	$node->safe_psql('postgres', 'CREATE ROLE conc_race LOGIN');
	$race{$what} .= '; later rotations fail with 42704 until the role is created again; afterwards ' . after_race($what);
}
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'no crash in the races');

# ---------------------------------------------------------------------------
# 4. Readers during a storm of rotations.  Two sessions keep reading the
# secret with secretsmgr_get_secret (cached, as an application would) and
# log in with what they read; after a failed login a reader reads again, in
# a new transaction, and must then log in.
sub storm
{
	my ($secret, $strategy) = @_;
	my $what = "$strategy: readers during $storm rotations";
	# 0.2 s apart: a rotation takes a few milliseconds, and each read is
	# followed by a login (a new process), so the storm must last long
	# enough for the readers to read between rotations on a loaded machine
	my @cmds = map { ("SELECT secretsmgr_rotate('$secret')", 'SELECT pg_sleep(0.2)') } 1 .. $storm;
	my @readers = map { $node->background_psql('postgres') } 1 .. 2;
	my $read_sql = "SELECT s ->> 'username', s ->> 'password' FROM "
	  . "(SELECT secretsmgr_get_secret('$secret') AS s) x";
	my %n = (reads => 0, ok => 0, failed_first => 0, failed_again => 0);
	my $last_id = history_ids($secret);
	my $rot = SmTest::start_psql($node, \@cmds);
	while ($rot->{h}->pumpable)
	{
		foreach my $rd (@readers)
		{
			$rd->{stderr} = '';
			my ($user, $pw) = split /\|/, $rd->query_safe($read_sql), 2;
			$n{reads}++;
			if (SmTest::can_login($node, $user, $pw))
			{
				$n{ok}++;
				next;
			}
			$n{failed_first}++;
			($user, $pw) = split /\|/, $rd->query_safe($read_sql), 2;
			$n{reads}++;
			$n{failed_again}++ unless SmTest::can_login($node, $user, $pw);
		}
		$rot->{h}->pump_nb;
	}
	$rot->{h}->finish;
	$_->quit foreach @readers;
	is(${ $rot->{err} }, '', "$what: every rotation succeeded");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM secretsmgr_rotation_history WHERE secret_id = '$secret' "
			  . "AND id > $last_id AND status = 'succeeded'"),
		$storm, "$what: $storm rotations recorded");
	cmp_ok($n{reads}, '>=', 2 * $storm, "$what: the readers read throughout ($n{reads} reads)");
	if ($strategy eq 'alternating')
	{
		is($n{failed_first}, 0, "$what: a password read never failed to log in");
	}
	is($n{failed_again}, 0, "$what: a failed login never lasted beyond one re-read");
	ok(SmTest::stage_logs_in($node, $secret, 'AWSCURRENT'), "$what: the final AWSCURRENT logs in");
	$figures{"storm $strategy"} = \%n;
}

bind_secret('conc/storm', 'conc_storm', 'single');
bind_secret('conc/storm_alt', 'conc_storm_alt', 'alternating');
storm('conc/storm', 'single');
storm('conc/storm_alt', 'alternating');

# ---------------------------------------------------------------------------
my $log = slurp_file($node->logfile);
unlike($log, qr/TRAP:|PANIC:|terminated by signal/, 'no backend crashed');
my @values = grep { length($_) >= 8 } split /\n/, SmTest::smctl('secret-values');
is(scalar(grep { index($log, $_) >= 0 } @values), 0,
	'no password of the ' . scalar(@values) . ' the emulator stored is in the server log');

my @md = (sprintf('Recorded %s.', scalar(gmtime()) . ' UTC'), '');
push @md, '| sessions rotating one secret at once | single: all done in | alternating: all done in |',
  '|---|---|---|';
push @md, map {
	sprintf('| %d | %s s | %s s |', $_, $figures{"serialise $_ conc/same"},
		$figures{"serialise $_ conc/same_alt"})
} 2, 4, 8;
push @md, '', 'Every session succeeded; each rotation replaced the version the previous one made current; '
  . 'two calls per rotation (GetSecretValue, PutSecretValue); no AWSPENDING left on a non-current version; '
  . 'the final AWSCURRENT logs in.';
push @md, '', sprintf('Another secret rotated in %s s while the first was held 5 s at PutSecretValue.',
	$figures{parallel});
push @md, '', '| race | outcome |', '|---|---|';
push @md, map { "| $_ | $race{$_} |" } sort keys %race;
push @md, '', 'A rotation that lost a race failed with PostgreSQL\'s internal XX000 rather than '
  . 'an error a client can act on: the suite fails on that.'
  if grep { /^failed: XX000/ } values %race;
push @md, '', '| readers during ' . $storm . ' rotations | reads | logins failed at the first try | failed again after a re-read |',
  '|---|---|---|---|';
foreach my $st ('single', 'alternating')
{
	my $n = $figures{"storm $st"};
	push @md, "| $st | $n->{reads} | $n->{failed_first} | $n->{failed_again} |";
}
push @md, '', sprintf('Run time %.0f s.', time() - $t_start);
diag("concurrency:\n" . join("\n", @md));
diag("concurrency figures written to $ENV{SM_FIGURES_DIR}")
  if SmTest::record_figures('concurrency', join("\n", @md));

$node->stop;
done_testing();
