# A cancel always wins over per-item error catching: secretsmgr_health,
# secretsmgr_rotate_due, the session's preload and secretsmgr_get_secrets
# catch errors one check, secret or batch at a time, yet pg_cancel_backend
# and statement_timeout end each of them with the cancel's own SQLSTATE
# (57014) and no rows, while Secrets Manager hangs (in a request, and in the
# retry backoff); pg_terminate_backend ends the session as promptly.  A backend whose client is killed stops at once and calls
# Secrets Manager no more.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# Every hang lasts 30 s; a statement must end within 3 s of the hang
# starting (the cancel comes at most 1 s into it).
my $hang_ms = 30000;
my $bound_s = 3;

my $node = SmTest::new_node('cancel_item',
	conf => "secretsmgr.request_timeout = '120s'\n"
	  . "secretsmgr.max_attempts = 1\n"
	  . "secretsmgr.cache_ttl = 0\n");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'item/app', '{"username":"item_app","password":"Item-App-Pw-123456"}');
SmTest::smctl('create', 'item/other', '{"username":"item_other","password":"Item-Other-Pw-654321"}');
$node->safe_psql('postgres', q{
	CREATE ROLE item_app LOGIN;
	SELECT secretsmgr_manage('item/app', 'item_app', 'single', '1 day');
});

my $preload = "SET secretsmgr.preload = 'item/app, item/other'";
my @cases = (
	{ name => 'secretsmgr_health', op => 'GetRandomPassword',
	  sql => 'SELECT * FROM secretsmgr_health()' },
	{ name => 'secretsmgr_health in the retry backoff', op => 'GetRandomPassword',
	  fault => 'throttle',
	  pre => [ 'SET secretsmgr.max_attempts = 10', "SET secretsmgr.retry_base_delay = '60s'" ],
	  sql => 'SELECT * FROM secretsmgr_health()' },
	{ name => 'secretsmgr_rotate_due', op => 'BatchGetSecretValue',
	  sql => 'SELECT * FROM secretsmgr_rotate_due()' },
	{ name => 'the preload of a first read', op => 'BatchGetSecretValue',
	  pre => [$preload],
	  sql => "SELECT secretsmgr_get_secret_string('item/other')" },
	{ name => 'secretsmgr_get_secrets (with its preload)', op => 'BatchGetSecretValue',
	  pre => [$preload],
	  sql => "SELECT * FROM secretsmgr_get_secrets(ARRAY['item/app', 'item/other'])" },
	{ name => 'secretsmgr_get_secrets, one by one', op => 'GetSecretValue',
	  sql => "SELECT * FROM secretsmgr_get_secrets(ARRAY['item/app', 'item/other'], 'AWSPREVIOUS')" },
);

# All API calls the emulator received since its last reset.
sub total_calls
{
	my $calls = SmTest::admin('GET', 'calls')->{calls};
	my $n = 0;
	$n += $_ foreach values %$calls;
	return $n;
}

# Start psql running @$cmds (one -c each, one session), killed after 20 s.
sub start_session
{
	my ($cmds) = @_;
	my ($in, $out, $err) = ('', '', '');
	my @cmd = ('psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
		map { ('-c', $_) } @$cmds);
	my $h = IPC::Run::start(\@cmd, '<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout(20));
	return { h => $h, out => \$out, err => \$err };
}

# Wait for the session to end; on the 20 s timeout kill it and its backend.
sub finish_session
{
	my ($s, $sql) = @_;
	my $ok = eval { $s->{h}->finish; 1 };
	if (!$ok)
	{
		$s->{h}->kill_kill;
		my $pid = SmTest::backend_running($node, $sql);
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)") if $pid;
	}
	return;
}

foreach my $c (@cases)
{
	foreach my $mode ('pg_cancel_backend', 'statement_timeout', 'pg_terminate_backend')
	{
		my $what = "$c->{name}, $mode";
		SmTest::reset_emulator();
		if ($c->{fault})
		{
			SmTest::fault_on('*', $c->{fault}, 100);
		}
		else
		{
			SmTest::fault_on('*', 'hang', 100, delay_ms => $hang_ms);
		}
		my @cmds = @{ $c->{pre} // [] };
		push @cmds, "SET statement_timeout = '1s'" if $mode eq 'statement_timeout';
		push @cmds, $c->{sql};
		my $s = start_session(\@cmds);
		ok(SmTest::wait_for_call($c->{op}, 1, 20), "$what: the call reached Secrets Manager");
		my $t0 = time();
		if ($mode ne 'statement_timeout')
		{
			usleep(300_000);
			my $pid = SmTest::backend_running($node, $c->{sql});
			$t0 = time();
			$node->safe_psql('postgres', "SELECT $mode($pid)");
		}
		finish_session($s, $c->{sql});
		my $elapsed = time() - $t0;
		my %expect = (
			pg_cancel_backend => qr/ERROR:  57014: canceling statement due to user request/,
			statement_timeout => qr/ERROR:  57014: canceling statement due to statement timeout/,
			pg_terminate_backend => qr/FATAL:  57P01: terminating connection due to administrator command/);
		like(${ $s->{err} }, $expect{$mode}, "$what: ends with the interrupt's own error");
		is(${ $s->{out} }, '', "$what: returns no rows");
		cmp_ok($elapsed, '<', $bound_s, "$what: ends within ${bound_s} s, not after the 30 s hang");
		diag(sprintf("%s: ended %.0f ms after the cancel", $what, $elapsed * 1000));
	}
}

# A client that goes away: its backend notices within a second or two, ends,
# and sends nothing more to Secrets Manager.  Every call is answered after
# 1.5 s, so a backend that went on would keep calling.
{
	my $sql = 'SELECT * FROM secretsmgr_health()';
	my $offset = -s $node->logfile;
	SmTest::reset_emulator();
	SmTest::fault_on('*', 'delay', 100, delay_ms => 1500);
	my $s = start_session([$sql]);
	ok(SmTest::wait_for_call('GetRandomPassword', 1, 20), 'lost client: health is calling');
	my $pid = SmTest::backend_running($node, $sql);
	ok($pid =~ /^\d+$/, 'lost client: its backend runs');
	$s->{h}->signal('KILL');
	eval { $s->{h}->finish };
	my $t0 = time();
	my $gone = 0;
	while (time() - $t0 < 15)
	{
		$gone = $node->safe_psql('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid") eq 't';
		last if $gone;
		usleep(100_000);
	}
	my $elapsed = time() - $t0;
	ok($gone, 'lost client: the backend ended');
	cmp_ok($elapsed, '<', 4, 'lost client: within a few seconds of the kill');
	diag(sprintf("lost client: backend gone %.0f ms after the kill", $elapsed * 1000));
	my $calls = total_calls();
	sleep 3;
	is(total_calls(), $calls, 'lost client: Secrets Manager gets no more calls');
	ok($node->log_contains(qr/connection to client lost/, $offset),
		'lost client: the server log says why the backend ended');
	$node->safe_psql('postgres',
		"SELECT pg_terminate_backend($pid) FROM pg_stat_activity WHERE pid = $pid");
}

# The server is healthy afterwards and reads work.
SmTest::reset_emulator();
is($node->safe_psql('postgres', "SELECT secretsmgr_get_secret('item/app') ->> 'username'"),
	'item_app', 'reads work after all of the above');
my $log = slurp_file($node->logfile);
unlike($log, qr/Item-App-Pw-123456|Item-Other-Pw-654321/, 'no secret value in the server log');
unlike($log, qr/TRAP|PANIC|terminated by signal/, 'no backend crashed');

$node->stop;
done_testing();
