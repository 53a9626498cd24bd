# pg_dump and pg_restore of a database that uses secretsmgr: the bindings
# (single and alternating), the rotation history and the EXECUTE grants come
# back in a fresh database exactly as they were; the dump holds no secret
# value; the bound roles rotate from the restored database and log in, for
# real, with the new AWSCURRENT; the history's ids go on after the old ones.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $node = SmTest::new_node('dump', scram_hba => 1);
SmTest::smctl('reset', '--state');
SmTest::smctl('create', 'dump/app',
	encode_json({ username => 'dump_app', password => 'Dump-App-Pw-' . int(rand(1e9)) }));
SmTest::smctl('create', 'dump/alt',
	encode_json({ username => 'dump_alt', password => 'Dump-Alt-Pw-' . int(rand(1e9)) }));

$node->safe_psql('postgres', 'CREATE DATABASE appdb');
$node->safe_psql('appdb', q{
	CREATE EXTENSION secretsmgr;
	CREATE ROLE dump_app LOGIN;
	CREATE ROLE dump_alt LOGIN;
	CREATE ROLE dump_dba LOGIN CREATEROLE;
	GRANT EXECUTE ON FUNCTION secretsmgr_rotate(text) TO dump_dba;
	SELECT secretsmgr_manage('dump/app', 'dump_app', rotation_interval => '7 days');
	SELECT secretsmgr_manage('dump/alt', 'dump_alt', 'alternating');
	SELECT secretsmgr_rotate('dump/app');
	SELECT secretsmgr_rotate('dump/alt');
	SELECT secretsmgr_rotate('dump/alt');
});
# a failed rotation is history too (its row written by the history worker)
SmTest::fault_on('PutSecretValue', 'access_denied', 1, secret => 'dump/app');
my ($ret) = $node->psql('appdb', "SELECT secretsmgr_rotate('dump/app')");
isnt($ret, 0, 'a rotation that failed');
SmTest::reset_emulator();
ok($node->poll_query_until('appdb',
		"SELECT count(*) > 0 FROM secretsmgr_rotation_history WHERE status = 'failed'"),
	'its failure is in the history');

my %q = (
	bindings => 'SELECT secret_id, secret_arn, role_name, clone_role, strategy, '
	  . 'rotation_interval, created_at, created_by FROM secretsmgr_managed ORDER BY 1',
	history => 'SELECT id, secret_id, role_name, new_version_id, previous_version_id, '
	  . 'strategy, step, status, via, started_at, finished_at, executed_by, sqlstate, error '
	  . 'FROM secretsmgr_rotation_history ORDER BY id',
	grants => "SELECT has_function_privilege('dump_dba', 'secretsmgr_rotate(text)', 'EXECUTE'), "
	  . "has_function_privilege('dump_app', 'secretsmgr_rotate(text)', 'EXECUTE'), "
	  . "has_table_privilege('dump_dba', 'secretsmgr_managed', 'SELECT')");
my %before = map { $_ => $node->safe_psql('appdb', $q{$_}) } keys %q;
like($before{bindings}, qr/^dump\/alt\|.*\|dump_alt\|dump_alt_clone\|alternating\|.*\ndump\/app\|.*\|dump_app\|\|single\|7 days\|/s,
	'two bindings before the dump');
my $nhist = () = $before{history} =~ /\n/g;
cmp_ok($nhist + 1, '>=', 4, 'history rows before the dump');
is($before{grants}, 't|f|f', 'EXECUTE granted to the DBA only');

# the dump, custom format, as a DBA takes it
my $dir = PostgreSQL::Test::Utils::tempdir();
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', "$dir/appdb.dump", '-d', $node->connstr('appdb') ],
	'pg_dump of the database');
$node->command_ok([ 'pg_restore', '-f', "$dir/appdb.sql", "$dir/appdb.dump" ],
	'the dump as SQL text');
my $sql = slurp_file("$dir/appdb.sql");
like($sql, qr/COPY public\.secretsmgr_managed /, 'the dump has the bindings');
like($sql, qr/COPY public\.secretsmgr_rotation_history /, 'and the history');
my @values = grep { length } split /\n/, SmTest::smctl('secret-values');
cmp_ok(scalar(@values), '>=', 6, 'the emulator lists the secret values');
is(scalar(grep { index($sql, $_) >= 0 } @values), 0, 'no secret value is in the dump');

# restored into a fresh database
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), "$dir/appdb.dump" ],
	'pg_restore into a fresh database, without an error');
foreach my $k (sort keys %q)
{
	is($node->safe_psql('restored', $q{$k}), $before{$k}, "$k restored as they were");
}

# the bound roles rotate from the restored database and log in
my $maxid = $node->safe_psql('restored', 'SELECT max(id) FROM secretsmgr_rotation_history');
is($node->safe_psql('restored', 'SELECT count(*) FROM secretsmgr_rotation_history'), $nhist + 1,
	'the restored history has every row');
is($node->safe_psql('restored', "SELECT secretsmgr_verify('dump/app')"), 't',
	'the restored binding verifies AWSCURRENT');
my ($u, $old) = SmTest::stage_creds('dump/app');
my $v = $node->safe_psql('restored', "SELECT secretsmgr_rotate('dump/app')");
my ($u2, $new, $vid) = SmTest::stage_creds('dump/app');
is($vid, $v, 'the rotation made the version it returned AWSCURRENT');
isnt($new, $old, 'the password changed');
ok(SmTest::can_login($node, 'dump_app', $new), 'single: AWSCURRENT logs in after the rotation');
ok(!SmTest::can_login($node, 'dump_app', $old), 'and the old password does not');

my ($altuser_before) = SmTest::stage_creds('dump/alt');
$node->safe_psql('restored', "SELECT secretsmgr_rotate('dump/alt')");
my ($altuser, $altpw) = SmTest::stage_creds('dump/alt');
isnt($altuser, $altuser_before, 'alternating: the other role took over');
ok(SmTest::can_login($node, $altuser, $altpw), 'alternating: AWSCURRENT logs in');

is($node->safe_psql('restored',
		"SELECT count(*) FILTER (WHERE id > $maxid) > 0, count(*) FILTER (WHERE id > $maxid) = count(*) - $nhist - 1 FROM secretsmgr_rotation_history"),
	't|t', 'the new history rows are numbered after the restored ones');
is($node->safe_psql('restored',
		"SELECT previous_version_id FROM secretsmgr_rotation_history WHERE secret_id = 'dump/app' AND step = 'finishSecret' AND id > $maxid"),
	$node->safe_psql('appdb',
		"SELECT new_version_id FROM secretsmgr_rotation_history WHERE secret_id = 'dump/app' AND step = 'finishSecret' AND status = 'succeeded' ORDER BY id DESC LIMIT 1"),
	'the rotation follows the version the dumped history ends with');

done_testing();
