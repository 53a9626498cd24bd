# The fault matrix: both Secrets Manager calls a rotation makes
# (GetSecretValue of AWSCURRENT, then the pre-commit PutSecretValue that
# makes the new version AWSCURRENT), times every way the call can fail, for
# both strategies.
#
# Faults the emulator serves (throttled past the retries, HTTP 500, dropped
# connection, hung past request_timeout, malformed body, oversized body,
# AccessDenied, the call performed but every answer lost), and
# interruptions while the call is held open:
# pg_cancel_backend, statement_timeout, SIGKILL of the backend, immediate
# shutdown and restart.  Each interruption is run twice: with the call never
# performed ("hang": the emulator closes the connection without acting) and
# with the call performed after the client has gone ("late": the emulator
# answers a delayed request, as AWS does with a request it received).
#
# After every case:
#  (a) the invariant, by a real libpq login: the password AWSCURRENT holds
#      logs in as the user it names ("held"), or one secretsmgr_reconcile
#      makes it so ("held after reconcile"), or one secretsmgr_rotate does
#      ("held after rotate"); anything else is a VIOLATION;
#  (b) the failure is visible: a "failed" history row with the step and
#      SQLSTATE, the LOG line, and rotate:failed in secretsmgr_stats() of
#      the failing session; after SIGKILL or an immediate stop (no session,
#      no row) the server log records the killed backend or the shutdown;
#  (c) the next rotation succeeds, and its password logs in.
#
# The matrix is printed with diag and compared with the one docs/reliability.md
# records; with SM_FIGURES_DIR set it is also written there for `make
# docs-figures`.  SM_MATRIX_REPEAT=N runs it N times.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $repeat = $ENV{SM_MATRIX_REPEAT} // 1;
my $attempts = 2;          # secretsmgr.max_attempts of the node
my $hold_ms = 1500;        # how long a "hang" or "late" call is held open
my $stmt_timeout_ms = 500;
my $t_start = time();

my $node = SmTest::new_node('matrix',
	scram_hba => 1,
	conf => "secretsmgr.max_attempts = $attempts\n"
	  . "secretsmgr.request_timeout = '1s'\n"
	  . "secretsmgr.cache_ttl = 0\n"
	  . "restart_after_crash = on\n");
SmTest::smctl('reset', '--state');

my %secret = (single => 'matrix/single', alternating => 'matrix/alt');
SmTest::smctl('create', 'matrix/single',
	'{"engine":"postgres","host":"127.0.0.1","dbname":"postgres","username":"mx_single","password":"Matrix-Single-Initial-Pw-1"}');
SmTest::smctl('create', 'matrix/alt',
	'{"engine":"postgres","host":"127.0.0.1","dbname":"postgres","username":"mx_alt","password":"Matrix-Alt-Initial-Pw-2"}');
$node->safe_psql('postgres', q{
	CREATE ROLE mx_single LOGIN;
	CREATE ROLE mx_alt LOGIN;
	SELECT secretsmgr_manage('matrix/single', 'mx_single');
	SELECT secretsmgr_manage('matrix/alt', 'mx_alt', 'alternating');
	SELECT secretsmgr_rotate('matrix/single');
	SELECT secretsmgr_rotate('matrix/alt');
});

# ---------------------------------------------------------------------------
# The rows: every call a rotation makes.  A rotation reads AWSCURRENT, and
# at pre-commit puts the new version as AWSCURRENT; nothing else.  Every row
# starts from the state a completed rotation leaves ("clean"), which is also
# the state a rolled-back one leaves.
my @calls = (
	{ name => 'GetSecretValue AWSCURRENT', op => 'GetSecretValue', nth => 1,
	  state => 'clean', step => 'createSecret' },
	{ name => 'PutSecretValue AWSCURRENT', op => 'PutSecretValue', nth => 1,
	  state => 'clean', step => 'finishSecret' },
);

# The columns.  api: the emulator answers with the fault, as many times as
# it takes to get past the retries (a dropped kept-alive connection may be
# retried silently by libcurl, so twice as many drops).  The others hold the
# call open and interrupt it.
my @columns = (
	{ name => 'throttle', kind => 'api', fault => 'throttle', count => $attempts, sqlstate => '53400' },
	{ name => '500', kind => 'api', fault => 'error500', count => $attempts, sqlstate => '08006' },
	{ name => 'drop', kind => 'api', fault => 'drop', count => 2 * $attempts, sqlstate => '08006' },
	{ name => 'hang', kind => 'api', fault => 'hang', count => $attempts, delay_ms => 2500, sqlstate => '08006' },
	{ name => 'malformed', kind => 'api', fault => 'malformed', count => $attempts, sqlstate => '08P01' },
	{ name => 'oversized', kind => 'api', fault => 'oversized', count => $attempts, sqlstate => '54000' },
	{ name => 'AccessDenied', kind => 'api', fault => 'access_denied', count => $attempts, sqlstate => '42501' },
	{ name => 'answer lost', kind => 'api', fault => 'lost_answer', count => 2 * $attempts, sqlstate => '08006' },
	{ name => 'cancel', kind => 'cancel', fault => 'hang' },
	{ name => 'cancel, late', kind => 'cancel', fault => 'delay' },
	{ name => 'statement_timeout', kind => 'timeout', fault => 'hang' },
	{ name => 'statement_timeout, late', kind => 'timeout', fault => 'delay' },
	{ name => 'SIGKILL', kind => 'kill', fault => 'hang' },
	{ name => 'SIGKILL, late', kind => 'kill', fault => 'delay' },
	{ name => 'immediate stop', kind => 'stop', fault => 'hang' },
	{ name => 'immediate stop, late', kind => 'stop', fault => 'delay' },
);

# ---------------------------------------------------------------------------
sub history_count
{
	my ($s, $status) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_rotation_history WHERE secret_id = '$s'"
		  . ($status ? " AND status = '$status'" : ''));
}

sub last_history
{
	my ($s) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ' ' || step || ' ' || coalesce(sqlstate, '-') "
		  . "FROM secretsmgr_rotation_history WHERE secret_id = '$s' ORDER BY id DESC LIMIT 1");
}

sub log_since
{
	my ($offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# The version holding a stage in a stage_map ('' if none).
sub holder
{
	my ($m, $stage) = @_;
	my @v = grep { my $v = $_; grep { $_ eq $stage } @{ $m->{$v} } } sort keys %$m;
	return "@v";
}

# AWSPENDING on a version other than AWSCURRENT?
sub pending_elsewhere
{
	my ($s) = @_;
	my $m = SmTest::stage_map($s);
	return scalar grep {
		my $st = $m->{$_};
		(grep { $_ eq 'AWSPENDING' } @$st) && !(grep { $_ eq 'AWSCURRENT' } @$st)
	} keys %$m;
}

# Bring the secret into the state a row starts from: no version other than
# AWSCURRENT carries AWSPENDING.
sub prepare_state
{
	my ($s, $state) = @_;
	return pending_elsewhere($s) == 0;
}

# Did the failing call take effect in Secrets Manager anyway?  A put that
# the emulator performs after its client has gone ("late"), or whose every
# answer was lost, made its version AWSCURRENT without the commit.
sub put_landed
{
	my ($call, $col) = @_;
	return $call->{op} eq 'PutSecretValue'
	  && ($col->{fault} eq 'delay' || $col->{fault} eq 'lost_answer');
}

# (a) The invariant.  Returns held / held after reconcile / held after
# rotate / VIOLATION.
sub invariant
{
	my ($s) = @_;
	return 'held' if SmTest::stage_logs_in($node, $s, 'AWSCURRENT');
	my ($ret) = $node->psql('postgres', "SELECT secretsmgr_reconcile('$s')");
	return 'held after reconcile'
	  if $ret == 0 && SmTest::stage_logs_in($node, $s, 'AWSCURRENT');
	($ret) = $node->psql('postgres', "SELECT secretsmgr_rotate('$s')");
	return 'held after rotate'
	  if $ret == 0 && SmTest::stage_logs_in($node, $s, 'AWSCURRENT');
	return 'VIOLATION';
}

# (c) The next rotation succeeds; its password logs in, and the replaced one
# no longer does (single) or still does as AWSPREVIOUS (alternating).
sub next_rotation
{
	my ($strategy, $s, $what) = @_;
	SmTest::reset_emulator();
	my ($user0, $pw0, $v0) = SmTest::stage_creds($s, 'AWSCURRENT');
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT secretsmgr_rotate('$s')");
	is($ret, 0, "$what: (c) the next rotation succeeds") or diag($err);
	my ($user1, $pw1, $v1) = SmTest::stage_creds($s, 'AWSCURRENT');
	is($v1, $out, "$what: (c) its version is AWSCURRENT");
	ok(SmTest::can_login($node, $user1, $pw1), "$what: (c) and logs in");
	if ($strategy eq 'single')
	{
		ok(!SmTest::can_login($node, $user0, $pw0), "$what: (c) the replaced password no longer logs in");
	}
	else
	{
		isnt($user1, $user0, "$what: (c) AWSCURRENT names the other user");
		ok(SmTest::stage_logs_in($node, $s, 'AWSPREVIOUS'), "$what: (c) AWSPREVIOUS still logs in");
	}
}

# Wait until every call of op that reached the emulator has been answered
# (a "late" call is performed after its client has gone).
sub wait_answered
{
	my ($op) = @_;
	my $until = time() + 30;
	while (time() < $until)
	{
		my $answered = grep { $_->{op} eq $op } SmTest::answered_calls();
		return 1 if $answered >= SmTest::api_calls($op);
		usleep(20_000);
	}
	return 0;
}

# ---------------------------------------------------------------------------
my %cell;          # "strategy|call|column" => { outcome => n }
my %total = (cases => 0, held => 0, 'held after reconcile' => 0,
	'held after rotate' => 0, VIOLATION => 0, failed => 0, completed => 0);

sub run_case
{
	my ($strategy, $call, $col) = @_;
	my $s = $secret{$strategy};
	my ($op, $nth) = ($call->{op}, $call->{nth});
	my $what = "$strategy, $call->{name} x $col->{name}";

	SmTest::reset_emulator();
	ok(prepare_state($s, $call->{state}), "$what: starts from the $call->{state} state");
	my $before = SmTest::stage_map($s);
	my $rows_before = history_count($s);
	my $log_offset = -s $node->logfile;
	my $outcome;         # failed / completed
	my $pid;

	my $stats_sql = "SELECT 'failed=' || coalesce((SELECT count FROM secretsmgr_stats() "
	  . "WHERE category = 'rotation' AND name = 'rotate:failed'), 0)";
	my $rotate_sql = "SELECT secretsmgr_rotate('$s')";
	my ($out, $err);

	SmTest::reset_emulator();
	if ($col->{kind} eq 'api')
	{
		SmTest::fault_nth($op, $nth, $col->{fault}, $col->{count},
			delay_ms => $col->{delay_ms}, secret => $s);
		my $r = SmTest::start_psql($node, [ $rotate_sql, $stats_sql ]);
		$r->{h}->finish;
		($out, $err) = (${ $r->{out} }, ${ $r->{err} });
		ok(SmTest::api_calls($op) >= $nth, "$what: the rotation reached the call");
	}
	else
	{
		SmTest::fault_nth($op, $nth, $col->{fault}, 1,
			delay_ms => $hold_ms, secret => $s);
		my @cmds = $col->{kind} eq 'timeout'
		  ? ("SET statement_timeout = '${stmt_timeout_ms}ms'", $rotate_sql, 'RESET statement_timeout')
		  : ("SET secretsmgr.request_timeout = '60s'", $rotate_sql);
		my $r = SmTest::start_psql($node, [ @cmds, $stats_sql ]);
		ok(SmTest::wait_for_call($op, $nth), "$what: the rotation reached the call");
		if ($col->{kind} ne 'timeout')
		{
			$pid = SmTest::backend_running($node, $rotate_sql);
			like($pid, qr/^\d+$/, "$what: the rotating backend is found");
		}
		if ($col->{kind} eq 'cancel')
		{
			$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
			$r->{h}->finish;
		}
		elsif ($col->{kind} eq 'timeout')
		{
			$r->{h}->finish;
		}
		elsif ($col->{kind} eq 'kill')
		{
			kill 'KILL', $pid;
			$r->{h}->finish;
			$node->poll_query_until('postgres', 'SELECT true')
			  or die "the server did not come back after SIGKILL";
		}
		else
		{
			$node->stop('immediate');
			$r->{h}->finish;
			$node->start;
		}
		($out, $err) = (${ $r->{out} }, ${ $r->{err} });
		ok(wait_answered($op), "$what: the emulator has answered every call")
		  if $col->{fault} eq 'delay';
	}
	SmTest::reset_emulator();

	# (b) the failure is visible
	my $log = log_since($log_offset);
	my $failed = $err =~ /ERROR:|server closed the connection|terminating connection|connection to server/;
	$outcome = $failed ? 'failed' : 'completed';
	$total{$outcome}++;
	if ($col->{kind} eq 'api' || $col->{kind} eq 'cancel')
	{
		ok($failed, "$what: (b) the rotation fails") or diag("stdout: $out\nstderr: $err");
		my $sqlstate = $col->{sqlstate} // '57014';
		is(history_count($s), $rows_before + 1, "$what: (b) one new history row");
		is(last_history($s), "failed $call->{step} $sqlstate",
			"$what: (b) it is a failure at $call->{step} with SQLSTATE $sqlstate");
		like($out, qr/^failed=1$/m, "$what: (b) counted in secretsmgr_stats() of the session");
		like($log, qr/LOG:  secretsmgr: rotate of secret "\Q$s\E" failed at step $call->{step}/,
			"$what: (b) the failure is in the server log");
	}
	elsif ($col->{kind} eq 'timeout')
	{
		if ($call->{step} eq 'finishSecret')
		{
			# statement_timeout is switched off before COMMIT starts: the
			# pre-commit put is bounded by request_timeout and the retries
			# instead, and here the retry (same token) succeeds.
			ok(!$failed, "$what: (b) statement_timeout does not interrupt COMMIT; the rotation completes")
			  or diag("stderr: $err");
			like($out, qr/^failed=0$/m, "$what: (b) no failure counted");
		}
		else
		{
			like($err, qr/canceling statement due to statement timeout/,
				"$what: (b) the rotation fails by statement_timeout");
			is(last_history($s), "failed $call->{step} 57014",
				"$what: (b) the history row names $call->{step} and 57014");
			is(history_count($s), $rows_before + 1, "$what: (b) one new history row");
			like($out, qr/^failed=1$/m, "$what: (b) counted in secretsmgr_stats() of the session");
			like($log, qr/LOG:  secretsmgr: rotate of secret "\Q$s\E" failed at step $call->{step}/,
				"$what: (b) the failure is in the server log");
		}
	}
	elsif ($col->{kind} eq 'kill')
	{
		ok($failed, "$what: (b) the client sees the backend die");
		# "server process" until PostgreSQL 17, "client backend" from 18
		like($log, qr/(?:server process|client backend) \(PID $pid\) was terminated by signal 9/,
			"$what: (b) the server log records the killed backend");
		like($log, qr/Failed process was running: \Q$rotate_sql\E/,
			"$what: (b) and the rotation it was running");
		is(history_count($s), $rows_before, "$what: (b) no history row (the transaction died with it)");
	}
	else
	{
		ok($failed, "$what: (b) the client loses its connection");
		like($log, qr/received immediate shutdown request/,
			"$what: (b) the server log records the immediate shutdown");
		like($log, qr/statement: \Q$rotate_sql\E/, "$what: (b) after the rotation started");
		is(history_count($s), $rows_before, "$what: (b) no history row (the transaction died with it)");
	}
	my $after = SmTest::stage_map($s);
	if ($outcome eq 'failed' && !put_landed($call, $col))
	{
		is_deeply([ holder($after, 'AWSCURRENT'), holder($after, 'AWSPREVIOUS') ],
			[ holder($before, 'AWSCURRENT'), holder($before, 'AWSPREVIOUS') ],
			"$what: AWSCURRENT and AWSPREVIOUS did not move");
	}
	elsif ($outcome eq 'completed')
	{
		isnt(holder($after, 'AWSCURRENT'), holder($before, 'AWSCURRENT'), "$what: AWSCURRENT moved");
	}

	# (a) the invariant
	my $inv = invariant($s);
	isnt($inv, 'VIOLATION', "$what: (a) the invariant holds ($inv)");
	my $expect = (put_landed($call, $col) && $outcome eq 'failed')
	  ? 'held after reconcile' : 'held';
	is($inv, $expect, "$what: (a) $expect, as the contract says");
	$total{cases}++;
	$total{$inv}++;
	my $text = $inv . ($outcome eq 'completed' ? ' (completed)' : '');
	$cell{"$strategy|$call->{name}|$col->{name}"}{$text}++;

	# (c) the next rotation
	next_rotation($strategy, $s, $what);
}

# ---------------------------------------------------------------------------
# Every call a rotation makes is a row of the matrix, and there are two:
# after a completed rotation and after a rolled-back one alike.
foreach my $strategy (sort keys %secret)
{
	my $s = $secret{$strategy};
	foreach my $state ('completed', 'rolled back')
	{
		SmTest::reset_emulator();
		$node->safe_psql('postgres', "BEGIN; SELECT secretsmgr_rotate('$s'); ROLLBACK;")
		  if $state eq 'rolled back';
		ok(prepare_state($s, 'clean'), "$strategy, after a $state rotation: no version is left pending");
		SmTest::reset_emulator();
		$node->safe_psql('postgres', "SELECT secretsmgr_rotate('$s')");
		my @ops = map { $_->{op} } SmTest::answered_calls();
		my %n;
		my @unknown = grep {
			my $nth = ++$n{$_};
			my $op = $_;
			!grep { $_->{op} eq $op && $_->{nth} >= $nth } @calls
		} @ops;
		is_deeply(\@unknown, [], "$strategy, after a $state rotation: every call of the rotation (@ops) is a row of the matrix");
		is(scalar(@ops), 2, "$strategy, after a $state rotation: two calls");
		is($n{PutSecretValue}, 1, "$strategy, after a $state rotation: one of them stores the new version");
	}
}

foreach my $round (1 .. $repeat)
{
	foreach my $strategy ('single', 'alternating')
	{
		foreach my $call (@calls)
		{
			foreach my $col (@columns)
			{
				run_case($strategy, $call, $col);
			}
		}
	}
}

# ---------------------------------------------------------------------------
# The matrix
sub cell_text
{
	my ($key) = @_;
	my $c = $cell{$key} // {};
	my @parts = map { $c->{$_} > 1 || $repeat > 1 ? "$_ ×$c->{$_}" : $_ } sort keys %$c;
	my $t = join(', ', @parts);
	return $t =~ /VIOLATION/ ? "**$t**" : $t;
}

my @md = (sprintf('Recorded %s.', scalar(gmtime()) . ' UTC'), '');
foreach my $strategy ('single', 'alternating')
{
	push @md, "Strategy `$strategy`:", '';
	push @md, '| fault \\ call | ' . join(' | ', map { $_->{name} } @calls) . ' |';
	push @md, '|---' x (1 + @calls) . '|';
	foreach my $col (@columns)
	{
		push @md, "| $col->{name} | "
		  . join(' | ', map { cell_text("$strategy|$_->{name}|$col->{name}") } @calls) . ' |';
	}
	push @md, '';
}
my $elapsed = time() - $t_start;
push @md,
  sprintf('Cases run: %d (%d calls × %d faults × 2 strategies%s); '
	  . 'invariant held: %d directly, %d after one `secretsmgr_reconcile`, %d after one `secretsmgr_rotate`; '
	  . 'violations: %d. Rotations that failed: %d; completed (statement_timeout does not reach the pre-commit put): %d. '
	  . 'Run time %.0f s.',
	$total{cases}, scalar(@calls), scalar(@columns),
	($repeat > 1 ? " × $repeat rounds" : ''),
	$total{held}, $total{'held after reconcile'}, $total{'held after rotate'},
	$total{VIOLATION}, $total{failed}, $total{completed}, $elapsed);
diag("fault matrix:\n" . join("\n", @md));
is($total{VIOLATION}, 0, 'no invariant violation in the whole matrix');
is($total{cases}, 2 * @calls * @columns * $repeat, 'every case of the matrix ran');

if (SmTest::record_figures('fault-matrix', join("\n", @md)))
{
	diag("fault matrix written to $ENV{SM_FIGURES_DIR}");
}

# No password reached the server log, and no backend crashed but the ones
# killed on purpose.
my @values = grep { length($_) >= 8 } split /\n/, SmTest::smctl('secret-values');
my $log = slurp_file($node->logfile);
is(scalar(grep { index($log, $_) >= 0 } @values), 0,
	'no password of the ' . scalar(@values) . ' the emulator stored is in the server log');
unlike($log, qr/TRAP:|PANIC:|terminated by signal (?!9)/, 'no backend crashed by itself');

$node->stop;
done_testing();
