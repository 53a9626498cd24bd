# pg_upgrade from an older major: a cluster of the server of
# SM_UPGRADE_FROM_PG_CONFIG (test/pg/matrix sets it to PostgreSQL 15, with
# the module installed there) that uses secretsmgr is upgraded to the server
# under test.  The bindings and the rotation history come through unchanged,
# a password set before the upgrade still logs in, and a rotation after it
# changes the password (a real login with the new one, none with the old).
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use JSON::PP;

my $from = $ENV{SM_UPGRADE_FROM_PG_CONFIG};
plan skip_all => 'SM_UPGRADE_FROM_PG_CONFIG names no older server (test/pg/matrix sets it)'
  unless $from;
my $oldbin = `"$from" --bindir`;
chomp $oldbin;
my ($oldmajor) = `"$from" --version` =~ /PostgreSQL (\d+)/;
my ($newmajor) = `pg_config --version` =~ /PostgreSQL (\d+)/;
plan skip_all => "PostgreSQL $oldmajor is not older than $newmajor"
  unless $oldmajor && $newmajor && $oldmajor < $newmajor;

# the old cluster, in use: bindings, rotations, history
my $old = SmTest::new_node('old', scram_hba => 1, install_path => dirname($oldbin));
like($old->safe_psql('postgres', 'SHOW server_version'), qr/^$oldmajor\./,
	"the old cluster runs PostgreSQL $oldmajor");
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'upg/app',
	encode_json({ username => 'upg_app', password => 'Upg-App-Pw-' . int(rand(1e9)) }));
SmTest::smctl('create', 'upg/alt',
	encode_json({ username => 'upg_alt', password => 'Upg-Alt-Pw-' . int(rand(1e9)) }));
$old->safe_psql('postgres', q{
	CREATE ROLE upg_app LOGIN;
	CREATE ROLE upg_alt LOGIN;
	CREATE ROLE upg_dba LOGIN CREATEROLE;
	GRANT EXECUTE ON FUNCTION secretsmgr_rotate(text) TO upg_dba;
	SELECT secretsmgr_manage('upg/app', 'upg_app', rotation_interval => '1 day');
	SELECT secretsmgr_manage('upg/alt', 'upg_alt', 'alternating');
	SELECT secretsmgr_rotate('upg/app');
	SELECT secretsmgr_rotate('upg/alt');
	SELECT secretsmgr_rotate('upg/alt');
});
my ($appuser, $apppw, $appvid) = SmTest::stage_creds('upg/app');
ok(SmTest::can_login($old, 'upg_app', $apppw), 'before: AWSCURRENT logs in to the old cluster');

my %q = (
	bindings => 'SELECT secret_id, secret_arn, role_name, clone_role, strategy, '
	  . 'rotation_interval, created_at, created_by FROM secretsmgr_managed ORDER BY 1',
	history => 'SELECT id, secret_id, role_name, new_version_id, previous_version_id, '
	  . 'strategy, step, status, via, started_at, finished_at, executed_by, sqlstate, error '
	  . 'FROM secretsmgr_rotation_history ORDER BY id',
	grants => "SELECT has_function_privilege('upg_dba', 'secretsmgr_rotate(text)', 'EXECUTE'), "
	  . "has_function_privilege('upg_app', 'secretsmgr_rotate(text)', 'EXECUTE')",
	extension => "SELECT extversion FROM pg_extension WHERE extname = 'secretsmgr'");
my %before = map { $_ => $old->safe_psql('postgres', $q{$_}) } keys %q;
like($before{bindings}, qr/upg\/alt\|.*\|upg_alt\|upg_alt_clone\|alternating/, 'bindings before');
my $nhist = () = $before{history} =~ /\n/g;
cmp_ok($nhist + 1, '>=', 3, 'history before');

# PostgreSQL 15.20 stamps every column with an attribute option, pg_attver,
# that 18.6 does not know: pg_upgrade from 15.20 to 18.6 fails on it for any
# table, with or without secretsmgr ("unrecognized parameter").  Where the
# old server stamped them, the user tables' stamps are taken off first, the
# only way between these two minors; nothing of secretsmgr's is touched.
my $stamped = $old->safe_psql('postgres',
	"SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid >= 16384 "
	  . "AND pg_catalog.array_to_string(attoptions, ',') LIKE '%pg_attver=%'");
if ($stamped > 0)
{
	note "removing $stamped pg_attver column stamps of the old server";
	$old->safe_psql('postgres', q{
		UPDATE pg_catalog.pg_attribute
		   SET attoptions = NULLIF(ARRAY(SELECT o FROM pg_catalog.unnest(attoptions) o
		                                  WHERE o NOT LIKE 'pg_attver=%'), '{}')
		 WHERE attrelid >= 16384 AND attoptions IS NOT NULL});
}
$old->stop;

# the new cluster: the server under test (data checksums off, as the old)
my $new = SmTest::new_node('new', scram_hba => 1, no_start => 1, no_data_checksums => 1);
my $dir = PostgreSQL::Test::Utils::tempdir();
$new->command_ok(
	[
		'pg_upgrade', '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $oldbin, '-B', $new->config_data('--bindir'),
		'-s', $new->host, '-p', $old->port, '-P', $new->port,
	],
	"pg_upgrade from $oldmajor to $newmajor");
{
	local $ENV{AWS_EC2_METADATA_DISABLED} = 'true';
	$new->start;
}
like($new->safe_psql('postgres', 'SHOW server_version'), qr/^$newmajor\./,
	"the upgraded cluster runs PostgreSQL $newmajor");
foreach my $k (sort keys %q)
{
	is($new->safe_psql('postgres', $q{$k}), $before{$k}, "$k unchanged by pg_upgrade");
}

# the password set by the old major still logs in; a rotation on the new one
ok(SmTest::can_login($new, 'upg_app', $apppw), 'after: the password set before the upgrade logs in');
is($new->safe_psql('postgres', "SELECT secretsmgr_verify('upg/app')"), 't',
	'secretsmgr_verify agrees');
my $maxid = $new->safe_psql('postgres', 'SELECT max(id) FROM secretsmgr_rotation_history');
my $vid = $new->safe_psql('postgres', "SELECT secretsmgr_rotate('upg/app')");
my ($u, $newpw, $curvid) = SmTest::stage_creds('upg/app');
is($curvid, $vid, 'the rotation after the upgrade made its version AWSCURRENT');
ok(SmTest::can_login($new, 'upg_app', $newpw), 'the new AWSCURRENT logs in (real libpq login)');
ok(!SmTest::can_login($new, 'upg_app', $apppw), 'the old password does not');
is($new->safe_psql('postgres',
		"SELECT previous_version_id, id > $maxid FROM secretsmgr_rotation_history WHERE secret_id = 'upg/app' AND step = 'finishSecret' ORDER BY id DESC LIMIT 1"),
	"$appvid|t", 'history goes on from the version AWSCURRENT had before the upgrade');

my ($altuser_before) = SmTest::stage_creds('upg/alt');
$new->safe_psql('postgres', "SELECT secretsmgr_rotate('upg/alt')");
my ($altuser, $altpw) = SmTest::stage_creds('upg/alt');
isnt($altuser, $altuser_before, 'alternating: the other role took over');
ok(SmTest::can_login($new, $altuser, $altpw), 'alternating: AWSCURRENT logs in');

$new->stop;
done_testing();
