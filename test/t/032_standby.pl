# A streaming standby refuses to rotate (secretsmgr_rotate, set_secret,
# reconcile, manage) with a clear error, while secretsmgr_verify and
# secretsmgr_test_secret work there; a rotation on the primary logs in on
# the standby once replayed.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = SmTest::new_node('primary', scram_hba => 1, allows_streaming => 1,
	conf => "secretsmgr.cache_ttl = 0\n");
# SmTest's password pg_hba.conf has no replication lines: add them
$primary->append_conf('pg_hba.conf',
	"local replication all trust\nhost replication all 127.0.0.1/32 trust\n");
$primary->reload;
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'standby/app',
	'{"engine":"postgres","host":"127.0.0.1","username":"standby_app","password":"Standby-Initial-Pw-1"}');
$primary->safe_psql('postgres', q{
	CREATE ROLE standby_app LOGIN;
	SELECT secretsmgr_manage('standby/app', 'standby_app');
	SELECT secretsmgr_rotate('standby/app');
});
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

sub creds
{
	my ($node) = @_;
	my $out = $node->safe_psql('postgres',
		"SELECT s ->> 'username', s ->> 'password' FROM "
		  . "(SELECT secretsmgr_get_secret('standby/app') AS s) x");
	return split /\|/, $out, 2;
}

is($standby->safe_psql('postgres', "SELECT pg_is_in_recovery()"), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', "SELECT secretsmgr_verify('standby/app')"), 't',
	'secretsmgr_verify works on the standby');
my $token = $standby->safe_psql('postgres',
	"SELECT key FROM jsonb_each(secretsmgr_describe_secret('standby/app') -> 'VersionIdsToStages') "
	  . "WHERE value ? 'AWSCURRENT'");
is($standby->safe_psql('postgres', "SELECT secretsmgr_test_secret('standby/app', '$token')"), 't',
	'secretsmgr_test_secret works on the standby');

SmTest::smctl('reset');    # call counters from zero
foreach my $sql (
	"SELECT secretsmgr_rotate('standby/app')",
	"SELECT secretsmgr_set_secret('standby/app', '$token')",
	"SELECT secretsmgr_reconcile('standby/app')",
	"SELECT secretsmgr_manage('standby/app', 'standby_app')",
	"SELECT * FROM secretsmgr_rotate_due()")
{
	my ($ret, $out, $err) = $standby->psql('postgres', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	(my $fn = $sql) =~ s/^SELECT (?:\* FROM )?(\w+).*/$1/;
	like($err, qr/ERROR:  25006: cannot run $fn\(\) during recovery/, "$fn is refused on the standby");
	like($err, qr/DETAIL:  $fn\(\) changes role passwords or the tables secretsmgr owns, which a standby cannot\./,
		"$fn says why");
	like($err, qr/HINT:  Run $fn\(\) on the primary server/, "$fn says where to run it");
}
is(SmTest::smctl('calls', 'PutSecretValue'), '0', 'the refused rotation stored nothing');

# a rotation on the primary logs in on the standby once replayed
my ($user, $old) = creds($primary);
$primary->safe_psql('postgres', "SELECT secretsmgr_rotate('standby/app')");
$primary->wait_for_catchup($standby);
my ($user2, $new) = creds($standby);
ok(SmTest::can_login($standby, $user2, $new), 'the new password logs in on the standby');
ok(!SmTest::can_login($standby, $user, $old), 'the old one no longer does');
is($standby->safe_psql('postgres', "SELECT secretsmgr_verify('standby/app')"), 't',
	'secretsmgr_verify agrees on the standby');

my @values = grep { length($_) >= 8 } split /\n/, SmTest::smctl('secret-values');
foreach my $node ($primary, $standby)
{
	my $log = slurp_file($node->logfile);
	is(scalar(grep { index($log, $_) >= 0 } @values), 0,
		'no password in the log of ' . $node->name);
}

$standby->stop;
$primary->stop;
done_testing();
