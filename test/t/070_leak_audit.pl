# The leak audit: a node that logs everything it can (every statement with
# its parameters, debug5, auto_explain of every nested statement,
# pg_stat_statements of every nested statement, secretsmgr preloaded with
# secretsmgr.log_reads on), a run of every SQL function
# of the extension, every error path that is cheap to reach, the rotation
# Lambda's steps through bind parameters, rotations of both strategies and
# reconciles; then every password and secret value the run produced (every
# value the emulator ever stored, and the passwords the test made up) is
# searched for, in plain, base64 and hex, in: the server log,
# pg_stat_statements, pg_stat_activity snapshots taken while a rotation
# waits on Secrets Manager, the history and registry tables, and every
# NOTICE / WARNING / ERROR the sessions received.  One hit fails the test.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use MIME::Base64 qw(encode_base64);
use Digest::MD5 qw(md5_hex);
use JSON::PP ();

my $t_start = time();
my $attempts = 2;
my $node = SmTest::new_node('leaks',
	scram_hba => 1,
	conf => "log_statement = 'all'\n"
	  . "log_min_messages = debug5\n"
	  . "log_min_error_statement = debug5\n"
	  . "log_min_duration_statement = 0\n"
	  . "log_parameter_max_length = -1\n"
	  . "log_parameter_max_length_on_error = -1\n"
	  . "log_error_verbosity = verbose\n"
	  . "log_connections = on\n"
	  . "log_disconnections = on\n"
	  . "shared_preload_libraries = 'pg_stat_statements,auto_explain,secretsmgr'\n"
	  . "secretsmgr.log_reads = on\n"
	  . "auto_explain.log_min_duration = 0\n"
	  . "auto_explain.log_analyze = on\n"
	  . "auto_explain.log_verbose = on\n"
	  . "auto_explain.log_nested_statements = on\n"
	  . "pg_stat_statements.track = all\n"
	  . "pg_stat_statements.track_utility = on\n"
	  . "track_activity_query_size = 16384\n"
	  . "track_functions = all\n"
	  . "secretsmgr.max_attempts = $attempts\n"
	  . "secretsmgr.request_timeout = '2s'\n");
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');
SmTest::smctl('reset', '--state');

# Every NOTICE / WARNING / ERROR (and debug message: client_min_messages is
# debug5) the sessions receive.
my @messages;
# Passwords the test made up itself (the emulator lists what it stored).
my @made_up;

# A new password, remembered for the search.
sub random_password
{
	my @c = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', split //, '!#$%&()*+,-.;<=>?[]^_{|}~');
	my $pw = join '', map { $c[ int(rand(@c)) ] } 1 .. 28;
	push @made_up, $pw;
	return $pw;
}

# Run SQL in a new session (psql -f -, going on after errors), with
# VERBOSITY verbose and every client message; returns (stdout, stderr).
sub run_sql
{
	my ($sql, @params) = @_;
	local $ENV{PGOPTIONS} = '-c client_min_messages=debug5';
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		on_error_stop => 0,
		extra_params => [ '-v', 'VERBOSITY=verbose', @params ]);
	push @messages, $err;
	return ($out, $err);
}

sub secret_json
{
	my ($user, $pw, %extra) = @_;
	my %doc = (engine => 'postgres', host => '127.0.0.1', port => 5432,
		dbname => 'postgres', username => $user, password => $pw, %extra);
	return JSON::PP->new->canonical->encode(\%doc);
}

# ---------------------------------------------------------------------------
# Secrets and roles
my $canary = 'leakcanary' . int(rand(1e9));
SmTest::smctl('create', 'leak/app', secret_json('leak_app', random_password()));
SmTest::smctl('create', 'leak/alt', secret_json('leak_alt', random_password()));
SmTest::smctl('create', 'leak/lambda', secret_json('leak_lambda', random_password()));
SmTest::smctl('create', 'leak/due', secret_json('leak_due', random_password()));
SmTest::smctl('create', 'leak/read',
	secret_json('leak_reader', random_password(), api_key => 'Leak-ApiKey-' . random_password()));
SmTest::smctl('create', 'leak/notjson', 'Leak-NotJson-' . random_password());
SmTest::smctl('create', 'leak/nopw', '{"username":"leak_np","token":"Leak-NoPw-' . random_password() . '"}');
SmTest::smctl('create', 'leak/other', secret_json('leak_someone_else', random_password()));
SmTest::smctl('create', "leak/$canary", secret_json('leak_canary', random_password()));
{
	my $bytes = join '', map { chr(int(rand(256))) } 1 .. 48;
	SmTest::smctl('create-binary', 'leak/binary', encode_base64($bytes, ''));
}
my ($out, $err) = run_sql(qq{
	CREATE ROLE leak_app LOGIN;
	CREATE ROLE leak_alt LOGIN;
	CREATE ROLE leak_lambda LOGIN;
	CREATE ROLE leak_due LOGIN;
	CREATE ROLE leak_nj LOGIN;
	CREATE ROLE leak_np LOGIN;
	CREATE ROLE leak_ou LOGIN;
	CREATE ROLE leak_canary LOGIN;
	CREATE ROLE leak_super LOGIN SUPERUSER;
	SELECT secretsmgr_manage('leak/app', 'leak_app');
	SELECT secretsmgr_manage('leak/alt', 'leak_alt', 'alternating');
	SELECT secretsmgr_manage('leak/lambda', 'leak_lambda');
	SELECT secretsmgr_manage('leak/due', 'leak_due', 'single', '1 second');
	SELECT secretsmgr_manage('leak/notjson', 'leak_nj');
	SELECT secretsmgr_manage('leak/nopw', 'leak_np');
	SELECT secretsmgr_manage('leak/other', 'leak_ou');
	SELECT secretsmgr_manage('leak/$canary', 'leak_canary');
});
is($err =~ /ERROR/ ? $err : '', '', 'the secrets are bound');

# ---------------------------------------------------------------------------
# Reading
run_sql(q{
	SELECT secretsmgr_get_secret('leak/read') ? 'api_key';
	SELECT secretsmgr_get_secret('leak/read') ? 'api_key';
	SELECT length(secretsmgr_get_secret_string('leak/read')) > 0;
	SELECT length(secretsmgr_get_secret_string('leak/notjson')) > 0;
	SELECT length(secretsmgr_get_secret_binary('leak/binary')) > 0;
	SELECT length(secretsmgr_get_secret_binary('leak/read')) > 0;
	SELECT secret_id, value IS NOT NULL, error FROM secretsmgr_get_secrets(
		ARRAY['leak/read', 'leak/app', 'leak/notjson', 'leak/binary', 'leak/missing', NULL]);
	SELECT secretsmgr_get_secrets(ARRAY['leak/read', 'leak/notjson'], 'AWSCURRENT', true);
	SELECT secretsmgr_describe_secret('leak/read') ? 'VersionIdsToStages';
	SELECT secretsmgr_cache_invalidate('leak/read');
	SELECT secretsmgr_cache_invalidate();
	SELECT count(*) > 0 FROM secretsmgr_stats();
	SELECT secretsmgr_stats_reset();
	SELECT count(*) > 0 FROM secretsmgr_cluster_stats;
	SELECT secretsmgr_cluster_stats_reset();
	SELECT secretsmgr_iam_policy() IS NOT NULL;
	SELECT secretsmgr_iam_policy('lambda', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:leak/admin-AbCdEf') IS NOT NULL;
	SELECT count(*) > 0 FROM secretsmgr_health();
	SELECT count(*) >= 0 FROM secretsmgr_stale_clients();
});
# preload and stale reads
run_sql(q{
	SET secretsmgr.preload = 'leak/read,leak/app,leak/missing,leak/notjson';
	SELECT secretsmgr_get_secret('leak/read') ? 'api_key';
});
{
	run_sql(q{SET secretsmgr.cache_ttl = '1s'; SET secretsmgr.cache_max_stale = '1h';
		SELECT secretsmgr_get_secret('leak/read') ? 'api_key';
		SELECT pg_sleep(1.2);
		\! /usr/bin/python3 "$SM_TEST_ROOT/emulator/smctl" fault GetSecretValue error500 4
		SELECT secretsmgr_get_secret('leak/read') ? 'api_key';
		\! /usr/bin/python3 "$SM_TEST_ROOT/emulator/smctl" reset
	});
}

# Error paths of the read functions
SmTest::reset_emulator();
run_sql(q{
	SELECT secretsmgr_get_secret('');
	SELECT secretsmgr_get_secret('leak/read', '');
	SELECT secretsmgr_get_secret('leak/read', NULL, 'short');
	SELECT secretsmgr_get_secret('leak/read', 'AWSCURRENT', '00000000-0000-0000-0000-000000000000');
	SELECT secretsmgr_get_secret(repeat('x', 2049));
	SELECT secretsmgr_get_secret('leak/missing');
	SELECT secretsmgr_get_secret('leak/notjson');
	SELECT secretsmgr_get_secret('leak/binary');
	SELECT secretsmgr_get_secret_string('leak/binary');
	SELECT secretsmgr_describe_secret('leak/missing');
	SELECT secretsmgr_iam_policy('nonsense');
	SELECT secretsmgr_manage('leak/read', 'leak_app', 'nonsense');
	SELECT secretsmgr_manage('leak/read', 'no_such_role');
	SELECT secretsmgr_manage('leak/read', 'leak_super');
	SELECT secretsmgr_manage('leak/missing', 'leak_app');
	SELECT secretsmgr_rotate('leak/read');
	SELECT secretsmgr_verify('leak/read');
	SELECT secretsmgr_unmanage('leak/never-managed');
});
foreach my $f (
	[ 'throttle', $attempts ], [ 'error500', $attempts ], [ 'drop', 2 * $attempts ],
	[ 'malformed', 1 ], [ 'oversized', 1 ], [ 'access_denied', 1 ],
	[ 'html403', 1 ], [ 'empty403', 1 ], [ 'xml_error', $attempts ],
	[ 'expired_token', $attempts ], [ 'decryption_failure', 1 ])
{
	SmTest::reset_emulator();
	SmTest::fault_on('GetSecretValue', $f->[0], $f->[1]);
	my ($o, $e) = run_sql("SELECT secretsmgr_get_secret('leak/read') ? 'api_key'");
	like($e, qr/ERROR:/, "reading through a $f->[0] fails");
}
SmTest::reset_emulator();
SmTest::admin('POST', 'deny', { secret_id => 'leak/read' });
run_sql(q{
	SELECT secretsmgr_get_secret('leak/read');
	SELECT secretsmgr_describe_secret('leak/read');
	SELECT * FROM secretsmgr_get_secrets(ARRAY['leak/read', 'leak/app']);
	SELECT count(*) FROM secretsmgr_health();
});
SmTest::reset_emulator();

# ---------------------------------------------------------------------------
# Rotations, both strategies, failures at every call, reconcile
run_sql(q{
	SELECT length(secretsmgr_rotate('leak/app'));
	SELECT length(secretsmgr_rotate('leak/alt'));
	SELECT length(secretsmgr_rotate('leak/alt'));
	SELECT length(secretsmgr_rotate('leak/lambda'));
	SELECT length(secretsmgr_rotate('leak/} . $canary . q{'));
	BEGIN; SELECT length(secretsmgr_rotate('leak/app')); ROLLBACK;
	BEGIN; SAVEPOINT s; SELECT length(secretsmgr_rotate('leak/alt')); ROLLBACK TO s; COMMIT;
	BEGIN; SELECT length(secretsmgr_rotate('leak/app')); SELECT length(secretsmgr_rotate('leak/app')); COMMIT;
	BEGIN; SELECT length(secretsmgr_rotate('leak/app')); PREPARE TRANSACTION 'leak'; ROLLBACK;
	SELECT secretsmgr_verify('leak/app');
	SELECT secretsmgr_verify('leak/app', 'AWSPREVIOUS');
	SELECT secretsmgr_verify('leak/alt', 'AWSPREVIOUS');
	SELECT secretsmgr_verify('leak/app', 'NOSUCHSTAGE');
	SELECT length(secretsmgr_reconcile('leak/app'));
	SELECT secretsmgr_rotate('leak/notjson');
	SELECT secretsmgr_rotate('leak/nopw');
	SELECT secretsmgr_rotate('leak/other');
	SET default_transaction_read_only = on; SELECT secretsmgr_rotate('leak/app'); RESET default_transaction_read_only;
	BEGIN READ ONLY; SELECT secretsmgr_rotate('leak/app'); ROLLBACK;
});
# (a completed rotation first; then each of the two calls a rotation makes
# fails: GetSecretValue of AWSCURRENT, the pre-commit PutSecretValue)
run_sql(q{SELECT length(secretsmgr_rotate('leak/app')); SELECT length(secretsmgr_rotate('leak/alt'));});
foreach my $call ([ 'GetSecretValue', 1 ], [ 'PutSecretValue', 1 ])
{
	foreach my $f ([ 'throttle', $attempts ], [ 'malformed', 1 ], [ 'access_denied', 1 ])
	{
		foreach my $s ('leak/app', 'leak/alt')
		{
			SmTest::reset_emulator();
			SmTest::fault_nth($call->[0], $call->[1], $f->[0], $f->[1], secret => $s);
			my ($o, $e) = run_sql("SELECT secretsmgr_rotate('$s')");
			like($e, qr/ERROR:/, "a rotation of $s failing at $call->[0] by $f->[0] fails");
		}
	}
}
SmTest::reset_emulator();
# A rotation ended by statement_timeout while it waits
{
	SmTest::fault_on('GetSecretValue', 'hang', 1, delay_ms => 3000, secret => 'leak/app');
	my ($o, $e) = run_sql("SET statement_timeout = '500ms'; SELECT secretsmgr_rotate('leak/app')");
	like($e, qr/statement timeout/, 'a rotation ended by statement_timeout');
	SmTest::reset_emulator();
}
# Drift: a new AWSCURRENT put by hand; reconcile applies it
SmTest::smctl('put', 'leak/app', secret_json('leak_app', random_password()));
run_sql(q{
	SELECT secretsmgr_verify('leak/app');
	SELECT length(secretsmgr_reconcile('leak/app'));
	SELECT length(secretsmgr_reconcile('leak/app'));
});
# Drift: the role's password changed by hand (an MD5 verifier, so that no
# password is in the statement); reconcile refuses, rotate repairs
{
	my $pw = random_password();
	run_sql("ALTER ROLE leak_app PASSWORD 'md5" . md5_hex($pw . 'leak_app') . "'");
	run_sql(q{
		SELECT secretsmgr_verify('leak/app');
		SELECT secretsmgr_reconcile('leak/app');
		SELECT length(secretsmgr_rotate('leak/app'));
	});
	ok(SmTest::can_login($node, 'leak_app', $pw) == 0, 'the hand-set password was replaced');
}
# Scheduled rotation
usleep(1_100_000);
run_sql(q{
	SELECT secret_id, status, length(version_id) FROM secretsmgr_rotate_due();
	SELECT secretsmgr_rotate_due();
});

# ---------------------------------------------------------------------------
# The rotation Lambda's steps: createSecret stores AWSPENDING under a token
# (a real signed PutSecretValue), then setSecret and testSecret get the
# token as bind parameters: PREPARE / EXECUTE, psql variables, and the
# extended protocol (pgbench -M extended).
sub lambda_create
{
	my ($pw) = @_;
	my $token = sprintf('%08x-%04x-4%03x-a%03x-%012x', rand(2**32), rand(2**16),
		rand(2**12), rand(2**12), rand(2**48));
	SmTest::smctl('put', 'leak/lambda', secret_json('leak_lambda', $pw),
		'--stages', 'AWSPENDING', '--token', $token);
	return $token;
}

sub pgbench_step
{
	my ($fn, $token) = @_;
	my $script = PostgreSQL::Test::Utils::tempdir() . "/$fn.sql";
	open(my $fh, '>', $script) or die;
	print $fh "SELECT $fn(:sid, :tok);\n";
	close $fh;
	my ($o, $e);
	local $ENV{PGOPTIONS} = '-c client_min_messages=debug5';
	IPC::Run::run([ 'pgbench', '-n', '-M', 'extended', '-t', '1', '-f', $script,
			'-D', 'sid=leak/lambda', '-D', "tok=$token",
			'-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$o, '2>', \$e);
	push @messages, $e;
	return $e;
}

{
	my $pw = random_password();
	my $token = lambda_create($pw);
	run_sql(qq{
		PREPARE set_s(text, text) AS SELECT secretsmgr_set_secret(\$1, \$2);
		PREPARE test_s(text, text) AS SELECT secretsmgr_test_secret(\$1, \$2);
		EXECUTE set_s('leak/lambda', '$token');
		EXECUTE test_s('leak/lambda', '$token');
		EXECUTE set_s('leak/lambda', '$token');
	});
	run_sql(q{
		SELECT secretsmgr_set_secret(:'sid', :'tok');
		SELECT secretsmgr_test_secret(:'sid', :'tok');
	}, '-v', 'sid=leak/lambda', '-v', "tok=$token");
	my $e = pgbench_step('secretsmgr_set_secret', $token);
	unlike($e, qr/ERROR/, 'setSecret through the extended protocol');
	$e = pgbench_step('secretsmgr_test_secret', $token);
	unlike($e, qr/ERROR/, 'testSecret through the extended protocol');
	ok(SmTest::can_login($node, 'leak_lambda', $pw), 'the Lambda steps set the pending password');
	# the Lambda stopped after setSecret: reconcile puts AWSCURRENT back
	run_sql(q{SELECT length(secretsmgr_reconcile('leak/lambda'))});
	ok(SmTest::stage_logs_in($node, 'leak/lambda', 'AWSCURRENT'), 'reconcile after an unfinished Lambda');

	# error paths of the steps
	my $current = (SmTest::stage_creds('leak/lambda', 'AWSCURRENT'))[2];
	pgbench_step('secretsmgr_set_secret', '00000000-0000-4000-8000-000000000000');
	pgbench_step('secretsmgr_test_secret', '00000000-0000-4000-8000-000000000000');
	run_sql(q{
		SELECT secretsmgr_set_secret(:'sid', :'tok');
		SELECT secretsmgr_test_secret(:'sid', :'tok');
		SELECT secretsmgr_set_secret('leak/lambda', 'short');
		SELECT secretsmgr_set_secret('leak/read', :'tok');
	}, '-v', 'sid=leak/lambda', '-v', "tok=$current");
	# a throttled setSecret, a malformed answer to testSecret
	my $token2 = lambda_create(random_password());
	SmTest::fault_on('GetSecretValue', 'throttle', $attempts);
	run_sql(q{SELECT secretsmgr_set_secret(:'sid', :'tok')}, '-v', 'sid=leak/lambda', '-v', "tok=$token2");
	SmTest::reset_emulator();
	SmTest::fault_on('GetSecretValue', 'malformed', 1);
	run_sql(q{SELECT secretsmgr_test_secret(:'sid', :'tok')}, '-v', 'sid=leak/lambda', '-v', "tok=$token2");
	SmTest::reset_emulator();
	run_sql(q{SELECT length(secretsmgr_rotate('leak/lambda'))});
}

# ---------------------------------------------------------------------------
# pg_stat_activity while a rotation, a setSecret and a read wait on Secrets
# Manager (the emulator delays the call).
my @activity;
sub snapshot_during
{
	my ($op, $nth, $secret, $sql) = @_;
	SmTest::reset_emulator();
	SmTest::fault_nth($op, $nth, 'delay', 1, delay_ms => 1500, secret => $secret);
	my $r = SmTest::start_psql($node, [$sql], extra_params => [ '-v', 'VERBOSITY=verbose' ],
		env => { PGOPTIONS => '-c client_min_messages=debug5' });
	SmTest::wait_for_call($op, $nth) or die "$sql never reached $op";
	foreach (1 .. 3)
	{
		push @activity, $node->safe_psql('postgres',
			"SELECT a::text FROM pg_stat_activity a WHERE pid <> pg_backend_pid()");
		usleep(100_000);
	}
	$r->{h}->finish;
	push @messages, ${ $r->{err} };
	SmTest::reset_emulator();
	return ${ $r->{out} };
}
snapshot_during('PutSecretValue', 1, 'leak/app', "SELECT length(secretsmgr_rotate('leak/app'))");
snapshot_during('PutSecretValue', 1, 'leak/alt', "SELECT length(secretsmgr_rotate('leak/alt'))");
{
	my $token = lambda_create(random_password());
	snapshot_during('GetSecretValue', 1, 'leak/lambda', "SELECT secretsmgr_set_secret('leak/lambda', '$token')");
	run_sql(q{SELECT length(secretsmgr_reconcile('leak/lambda'))});
}
snapshot_during('GetSecretValue', 1, 'leak/read', "SELECT secretsmgr_get_secret('leak/read') ? 'api_key'");
like(join('', @activity), qr/secretsmgr_rotate\('leak\/app'\)/, 'the snapshots saw the waiting rotation');

# the unmanage path last: it ends the bindings it removes
run_sql(q{SELECT secretsmgr_unmanage('leak/other'); SELECT secretsmgr_unmanage('leak/nopw');});

# ---------------------------------------------------------------------------
# Every SQL function of the extension was called.
my @functions = split /\n/, $node->safe_psql('postgres', q{
	SELECT p.oid::regprocedure FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'secretsmgr'
	ORDER BY 1});
cmp_ok(scalar(@functions), '>=', 18, 'the extension\'s functions are listed');
my $uncalled_sql = q{
	SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'secretsmgr'
	LEFT JOIN pg_stat_user_functions f ON f.funcid = p.oid
	WHERE coalesce(f.calls, 0) = 0};
# (the statistics of a session reach pg_stat_user_functions when it ends)
$node->poll_query_until('postgres', "SELECT ($uncalled_sql) IS NULL");
is($node->safe_psql('postgres', $uncalled_sql), '', 'every function of the extension was called at least once');
my $called = $node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_user_functions f
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = f.funcid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'secretsmgr'
	WHERE f.calls > 0});

# The control value of the search (no secret): logged in each form it is
# searched in, and sent in a NOTICE.
my $control = 'Leak-Control-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 16);
run_sql("SELECT '$control' AS c1, '" . encode_base64($control, '') . "' AS c2, '"
	  . unpack('H*', $control) . "' AS c3, '" . uc(unpack('H*', $control)) . "' AS c4;\n"
	  . "DO \$\$BEGIN RAISE NOTICE '%', '$control'; END\$\$;");

# ---------------------------------------------------------------------------
# The search.  Places: the server log, pg_stat_statements, the
# pg_stat_activity snapshots, the tables, the messages.
my %places = (
	'server log' => slurp_file($node->logfile),
	'pg_stat_statements' => $node->safe_psql('postgres',
		'SELECT string_agg(query, E\'\n\') FROM pg_stat_statements'),
	'pg_stat_activity snapshots' => join("\n", @activity),
	'secretsmgr_rotation_history' => $node->safe_psql('postgres',
		'SELECT string_agg(h::text, E\'\n\') FROM secretsmgr_rotation_history h'),
	'secretsmgr_managed' => $node->safe_psql('postgres',
		'SELECT string_agg(m::text, E\'\n\') FROM secretsmgr_managed m'),
	'client messages' => join("\n", @messages),
);

# The audit can see: the canary secret's name is in each place that records
# names (so an empty or unread place would show), and the messages hold the
# errors raised above.
foreach my $p ('server log', 'secretsmgr_rotation_history', 'secretsmgr_managed')
{
	like($places{$p}, qr/\Q$canary\E/, "the audit reads the $p (the canary secret's name is there)");
}
like($places{pg_stat_statements}, qr/secretsmgr_rotate/, 'the audit reads pg_stat_statements');
like($places{'pg_stat_activity snapshots'}, qr/secretsmgr_set_secret/, 'and the pg_stat_activity snapshots');
like($places{'client messages'}, qr/ERROR:  42501:/, 'the messages hold the access denials');
like($places{'client messages'}, qr/ERROR:  53400:/, 'and the throttling');
like($places{'server log'}, qr/duration: .* plan:/s, 'auto_explain wrote plans');
# "parameters:" until PostgreSQL 17, "Parameters:" from 18
like($places{'server log'}, qr/DETAIL:  [Pp]arameters: \$1 = 'leak\/lambda', \$2 = '/,
	'the bind parameters of the Lambda steps are logged');

my @values = grep { length($_) >= 8 } split /\n/, SmTest::smctl('secret-values');
push @values, @made_up;
my %seen;
@values = grep { !$seen{$_}++ } @values;
cmp_ok(scalar(@values), '>=', 40, 'the run produced many secret values (' . scalar(@values) . ')');

sub forms
{
	my ($v) = @_;
	my $hex = unpack('H*', $v);
	return ($v, encode_base64($v, ''), $hex, uc($hex));
}

# A control: the search finds a value that was put in the log in each form,
# and in a NOTICE.
{
	my %h;
	foreach my $p (keys %places)
	{
		foreach my $form (forms($control))
		{
			$h{$p}++ if index($places{$p}, $form) >= 0;
		}
	}
	is($h{'server log'}, 4, 'control: the search finds a logged value in each of its 4 forms');
	ok($h{'client messages'}, 'control: and in a NOTICE');
}

my ($searched, $hits) = (0, 0);
my %hits_by_place;
foreach my $v (@values)
{
	my @f = forms($v);
	foreach my $p (sort keys %places)
	{
		foreach my $form (@f)
		{
			$searched++;
			next if index($places{$p}, $form) < 0;
			$hits++;
			$hits_by_place{$p}++;
			diag("a secret value (" . length($v) . " characters) is in the $p");
		}
	}
}
my $sizes = join(', ', map { sprintf('%s %d kB', $_, length($places{$_}) / 1024) } sort keys %places);
diag(sprintf('leak audit: %d values × %d forms × %d places = %d searches; %d hits. Searched: %s',
	scalar(@values), 4, scalar(keys %places), $searched, $hits, $sizes));
is($hits, 0, 'no secret value in any place');

my @md = (
	sprintf('Recorded %s.', scalar(gmtime()) . ' UTC'),
	'',
	sprintf('Functions called: %d of %d (every function of the extension, checked in '
		  . '`pg_stat_user_functions`).', $called, scalar(@functions)),
	'',
	sprintf('Values searched: %d (every value the emulator stored, their `password` fields, '
		  . 'binary values as base64 and hex, and passwords the test set by hand), each in 4 forms '
		  . '(plain, base64, hex, upper-case hex), in %d places: %d searches, **%d hits**.',
		scalar(@values), scalar(keys %places), $searched, $hits),
	'',
	'| place | size searched | hits |', '|---|---|---|',
	(map { sprintf('| %s | %d kB | %d |', $_, length($places{$_}) / 1024, $hits_by_place{$_} // 0) }
		sort keys %places),
	'',
	sprintf('Run time %.0f s.', time() - $t_start));
diag("leak audit written to $ENV{SM_FIGURES_DIR}") if SmTest::record_figures('leak-audit', join("\n", @md));

$node->stop;
done_testing();
