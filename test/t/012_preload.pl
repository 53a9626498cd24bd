# The session's preload (secretsmgr.preload): a first read inside a parallel
# plan works (no subtransaction can start there, so the preload waits for the
# next read outside one), and a preload that did not run, because it was
# skipped that way or cancelled, is run by the next read.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = SmTest::new_node('preload',
	conf => "secretsmgr.request_timeout = '120s'\n"
	  . "secretsmgr.max_attempts = 1\n");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'pre/a', '{"username":"pre_a","password":"Preload-A-Pw-123456"}');
SmTest::smctl('create', 'pre/b', '{"username":"pre_b","password":"Preload-B-Pw-654321"}');
$node->safe_psql('postgres',
	'CREATE TABLE pre_rows AS SELECT g AS i FROM generate_series(1, 1000) g; ANALYZE pre_rows');

# force_parallel_mode was renamed debug_parallel_query in PostgreSQL 16
my $force = $node->safe_psql('postgres', 'SHOW server_version_num') >= 160000
  ? 'debug_parallel_query' : 'force_parallel_mode';
my $parallel = "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;\n"
  . "SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;\n"
  . "SET $force = on;\n";
my $read_in_parallel =
  "SELECT secretsmgr_get_secret('pre/b') ->> 'username' FROM pre_rows WHERE i = 1";

# the read runs in a parallel plan: a Gather under it
my $plan = $node->safe_psql('postgres', $parallel . "EXPLAIN (COSTS OFF) $read_in_parallel");
like($plan, qr/Gather/, 'the read is planned in parallel');

# first read of a session, inside that plan
SmTest::reset_emulator();
my ($ret, $out, $err) = $node->psql('postgres',
	"SET secretsmgr.preload = 'pre/a';\n" . $parallel
	  . "$read_in_parallel;\n",
	on_error_stop => 0);
is($ret, 0, 'a first read inside a parallel plan succeeds');
unlike($err, qr/cannot start subtransactions/, 'no subtransaction is started in the parallel operation');
like($out, qr/^pre_b$/m, 'it returns the value');
is(SmTest::api_calls('BatchGetSecretValue'), 0, 'the preload waited');

# ... and the next read outside a parallel plan runs the preload
SmTest::reset_emulator();
($ret, $out, $err) = $node->psql('postgres',
	"SET secretsmgr.preload = 'pre/a';\n" . $parallel
	  . "$read_in_parallel;\n"
	  . "RESET $force;\n"
	  . "SELECT secretsmgr_get_secret('pre/b') ->> 'username';\n"
	  . "SELECT secretsmgr_get_secret('pre/b') ->> 'username';\n",
	on_error_stop => 0);
is(SmTest::api_calls('BatchGetSecretValue'), 1,
	'the first read outside the parallel plan ran the preload, once');
like($out, qr/^pre_b\npre_b\npre_b$/, 'every read returned the value');

# a cancelled preload is tried again by the next read
SmTest::reset_emulator();
SmTest::fault_on('BatchGetSecretValue', 'hang', 1, delay_ms => 30000);
($ret, $out, $err) = $node->psql('postgres',
	"SET secretsmgr.preload = 'pre/a';\n"
	  . "SET statement_timeout = '500ms';\n"
	  . "SELECT secretsmgr_get_secret('pre/b') ->> 'username';\n"
	  . "RESET statement_timeout;\n"
	  . "SELECT secretsmgr_get_secret('pre/b') ->> 'username';\n",
	on_error_stop => 0);
like($err, qr/canceling statement due to statement timeout/, 'the preload was cancelled');
is(SmTest::api_calls('BatchGetSecretValue'), 2, 'the next read ran the preload again');
like($out, qr/^pre_b$/m, 'and returned the value');

my $log = slurp_file($node->logfile);
unlike($log, qr/Preload-A-Pw-123456|Preload-B-Pw-654321/, 'no secret value in the server log');

$node->stop;
done_testing();
