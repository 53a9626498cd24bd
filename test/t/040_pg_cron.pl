# Scheduled rotation: pg_cron calls secretsmgr_rotate_due() on a schedule;
# the managed role then logs in, for real, with the new AWSCURRENT password
# and not with the old one, and the history says the scheduler did it.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

# pg_cron is a package of its own for each major (postgresql-15-cron)
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
plan skip_all => "pg_cron is not installed for this server ($sharedir)"
  unless -f "$sharedir/extension/pg_cron.control";

my $node = SmTest::new_node('cron', scram_hba => 1,
	conf => "shared_preload_libraries = 'pg_cron'\n"
	  . "cron.database_name = 'postgres'\n"
	  . "cron.use_background_workers = on\n"
	  . "max_worker_processes = 16\n");
SmTest::smctl('reset', '--state');

my $initial = 'Cron-Initial-Pw-' . int(rand(1e9));
SmTest::smctl('create', 'cron/app',
	encode_json({ username => 'cron_app', password => $initial, engine => 'postgres' }));
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_cron;
	CREATE ROLE cron_app LOGIN;
	SELECT secretsmgr_manage('cron/app', 'cron_app', rotation_interval => '1 hour');
});

# the initial password was never given to the role
ok(!SmTest::can_login($node, 'cron_app', $initial), 'before: the initial password does not log in');

# every minute (pg_cron 1.4's finest grain); the first run rotates, since the
# secret was never rotated
$node->safe_psql('postgres',
	"SELECT cron.schedule('secretsmgr-rotate-due', '* * * * *', 'SELECT * FROM secretsmgr_rotate_due()')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM secretsmgr_rotation_history WHERE secret_id = 'cron/app' AND via = 'scheduler'",
		't'),
	'pg_cron ran secretsmgr_rotate_due() within its minute');
is($node->safe_psql('postgres',
		"SELECT step || ' ' || status FROM secretsmgr_rotation_history WHERE via = 'scheduler' ORDER BY id LIMIT 1"),
	'finishSecret succeeded', 'the scheduled rotation finished');
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM cron.job_run_details WHERE status = 'succeeded'", 't'),
	'pg_cron recorded the job as succeeded');

my $shown = decode_json(SmTest::smctl('show', 'cron/app'));
my ($current) = grep { grep { $_ eq 'AWSCURRENT' } @{ $_->{VersionStages} } } @{ $shown->{Versions} };
ok($current, 'AWSCURRENT found in the emulator');
my $value = decode_json($current->{SecretString});
isnt($value->{password}, $initial, 'the password changed');
ok(SmTest::can_login($node, 'cron_app', $value->{password}), 'after: AWSCURRENT logs in (real libpq login)');
ok(!SmTest::can_login($node, 'cron_app', $initial), 'after: the old password does not');

# not due again for an hour: the next runs rotate nothing
my $before = $node->safe_psql('postgres', "SELECT count(*) FROM secretsmgr_rotation_history");
is($node->safe_psql('postgres', "SELECT count(*) FROM secretsmgr_rotate_due()"), '0',
	'a rotated secret is not due again before its interval');
is($node->safe_psql('postgres', "SELECT count(*) FROM secretsmgr_rotation_history"), $before,
	'and nothing was recorded');

$node->safe_psql('postgres', "SELECT cron.unschedule('secretsmgr-rotate-due')");
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$value->{password}\E/, 'the new password is not in the server log');
unlike($log, qr/\Q$initial\E/, 'the initial password is not in the server log');
$node->stop;
done_testing();
