# A commit that fails after the pre-commit PutSecretValue.  secretsmgr_rotate
# puts its new version as AWSCURRENT just before the commit; when the commit
# then fails (the put of a second secret of the same transaction, throttled
# or denied; a serialization failure under SERIALIZABLE), the roles keep
# their old passwords, so every label the transaction moved must be moved back,
# the rotation recorded as failed with the reason, and not counted as a
# success.  Afterwards AWSCURRENT logs in (a real login) with no manual
# reconcile.  The way back never overrides a rotation that came after.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = SmTest::new_node('commit_undo',
	scram_hba => 1,
	conf => "secretsmgr.max_attempts = 2\n");
SmTest::smctl('reset', '--state');

# A secret bound to a new role, rotated once so that the role has a password.
sub bind_secret
{
	my ($secret, $role) = @_;
	SmTest::smctl('create', $secret,
		qq({"engine":"postgres","host":"127.0.0.1","username":"$role","password":"Undo-Initial-$role"}));
	$node->safe_psql('postgres', qq{
		CREATE ROLE $role LOGIN;
		SELECT secretsmgr_manage('$secret', '$role');
		SELECT secretsmgr_rotate('$secret');
	});
	return;
}

sub last_id
{
	return $node->safe_psql('postgres',
		'SELECT coalesce(max(id), 0) FROM secretsmgr_rotation_history');
}

sub current_version
{
	my ($secret) = @_;
	return (SmTest::stage_creds($secret))[2];
}

# Wait for the failed row of $secret written after $after by the way back;
# returns "sqlstate|error" of it.
sub undo_row
{
	my ($secret, $after) = @_;
	my $q = "SELECT count(*) > 0 FROM secretsmgr_rotation_history WHERE secret_id = '$secret' "
	  . "AND id > $after AND status = 'failed' AND error LIKE 'the transaction did not commit after AWSCURRENT moved%'";
	$node->poll_query_until('postgres', $q) or return '';
	return $node->safe_psql('postgres',
		"SELECT coalesce(sqlstate, '') || '|' || error FROM secretsmgr_rotation_history "
		  . "WHERE secret_id = '$secret' AND id > $after AND status = 'failed' ORDER BY id LIMIT 1");
}

# Rows of $secret after $after with status succeeded.
sub succeeded_rows
{
	my ($secret, $after) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM secretsmgr_rotation_history WHERE secret_id = '$secret' "
		  . "AND id > $after AND status = 'succeeded'");
}

# rotate:<status> count in the session $s.
sub session_count
{
	my ($s, $status) = @_;
	$s->{stderr} = '';
	return $s->query_safe("SELECT coalesce(sum(count), 0) FROM secretsmgr_stats() "
		  . "WHERE category = 'rotation' AND name = 'rotate:$status'");
}

bind_secret('undo/a', 'undo_a');
bind_secret('undo/b', 'undo_b');

# ---------------------------------------------------------------------------
# 1. Two secretsmgr_rotate calls in one transaction; the second secret's
# put fails at commit: throttled (every attempt), then access denied.
foreach my $fault ('throttle', 'access_denied')
{
	my $what = "second secret's put $fault";
	my $va = current_version('undo/a');
	my $vb = current_version('undo/b');
	my $after = last_id();
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->query_safe('SELECT secretsmgr_stats_reset()');
	if ($fault eq 'throttle')
	{
		SmTest::fault_on('PutSecretValue', 'throttle', 2, secret => 'undo/b');
	}
	else
	{
		SmTest::admin('POST', 'deny', { secret_id => 'undo/b', operation => 'PutSecretValue' });
	}
	$s->query("BEGIN; SELECT secretsmgr_rotate('undo/a'); SELECT secretsmgr_rotate('undo/b'); COMMIT;");
	like($s->{stderr}, $fault eq 'throttle' ? qr/throttl/i : qr/denied|not authorized/i,
		"$what: the commit fails");
	SmTest::admin('POST', 'allow', { secret_id => 'undo/b', operation => 'PutSecretValue' })
	  if $fault eq 'access_denied';

	my $row = undo_row('undo/a', $after);
	like($row, qr/moved back to version "\Q$va\E"/, "$what: the first secret's label is moved back");
	like($row, qr/the PutSecretValue of secret "undo\/b" failed/, "$what: its history row gives the reason");
	like($row, $fault eq 'throttle' ? qr/^53400\|/ : qr/^42501\|/, "$what: and the SQLSTATE");
	is(current_version('undo/a'), $va, "$what: AWSCURRENT of the first secret is the version before");
	ok(SmTest::stage_logs_in($node, 'undo/a'), "$what: AWSCURRENT of the first secret logs in");
	is(current_version('undo/b'), $vb, "$what: AWSCURRENT of the second secret did not move");
	ok(SmTest::stage_logs_in($node, 'undo/b'), "$what: AWSCURRENT of the second secret logs in");
	is(succeeded_rows('undo/a', $after) + succeeded_rows('undo/b', $after), 0,
		"$what: no succeeded row");
	is(session_count($s, 'succeeded'), 0, "$what: secretsmgr_stats() counts no success");
	is(session_count($s, 'failed'), 2, "$what: secretsmgr_stats() counts both rotations failed");
	$s->quit;
}

# ---------------------------------------------------------------------------
# 2. secretsmgr_rotate_due(), the second secret's put denied.
{
	my $what = 'secretsmgr_rotate_due';
	$node->safe_psql('postgres',
		"UPDATE secretsmgr_managed SET rotation_interval = '1 second' WHERE secret_id IN ('undo/a', 'undo/b')");
	usleep(1_200_000);
	my $va = current_version('undo/a');
	my $vb = current_version('undo/b');
	my $after = last_id();
	SmTest::admin('POST', 'deny', { secret_id => 'undo/b', operation => 'PutSecretValue' });
	my ($ret, $out, $err) = $node->psql('postgres',
		'SELECT count(*) FROM secretsmgr_rotate_due()');
	SmTest::admin('POST', 'allow', { secret_id => 'undo/b', operation => 'PutSecretValue' });
	$node->safe_psql('postgres',
		"UPDATE secretsmgr_managed SET rotation_interval = NULL WHERE secret_id IN ('undo/a', 'undo/b')");
	isnt($ret, 0, "$what: the commit fails");
	my $row = undo_row('undo/a', $after);
	like($row, qr/moved back to version "\Q$va\E"/, "$what: the first secret's label is moved back");
	is(current_version('undo/a'), $va, "$what: AWSCURRENT of the first secret is the version before");
	ok(SmTest::stage_logs_in($node, 'undo/a'), "$what: AWSCURRENT of the first secret logs in");
	ok(SmTest::stage_logs_in($node, 'undo/b'), "$what: AWSCURRENT of the second secret logs in");
	is(succeeded_rows('undo/a', $after) + succeeded_rows('undo/b', $after), 0,
		"$what: no succeeded row");
}

# ---------------------------------------------------------------------------
# 3. SERIALIZABLE: two transactions with a read/write conflict; the one
# holding a secretsmgr_rotate fails at COMMIT with 40001, after its put
# made the new version AWSCURRENT.
$node->safe_psql('postgres',
	'CREATE TABLE ssi (id int PRIMARY KEY, v int); INSERT INTO ssi VALUES (1, 0), (2, 0)');
{
	my $what = 'serialization failure at COMMIT';
	my $va = current_version('undo/a');
	my $after = last_id();
	my $s1 = $node->background_psql('postgres', on_error_stop => 0);
	my $s2 = $node->background_psql('postgres', on_error_stop => 0);
	$s1->query_safe('SELECT secretsmgr_stats_reset()');
	$s1->query_safe('BEGIN ISOLATION LEVEL SERIALIZABLE');
	$s1->query_safe('SELECT v FROM ssi WHERE id = 1');
	$s2->query_safe('BEGIN ISOLATION LEVEL SERIALIZABLE');
	$s2->query_safe('SELECT v FROM ssi WHERE id = 2');
	$s2->query_safe('UPDATE ssi SET v = v + 1 WHERE id = 1');
	$s1->query_safe('UPDATE ssi SET v = v + 1 WHERE id = 2');
	my $v1 = $s1->query_safe("SELECT secretsmgr_rotate('undo/a')");
	$s2->query_safe('COMMIT');
	my $calls = SmTest::api_calls('PutSecretValue');
	$s1->query('COMMIT');
	like($s1->{stderr}, qr/could not serialize access/, "$what: the COMMIT fails with a serialization failure");
	cmp_ok(SmTest::api_calls('PutSecretValue'), '>', $calls,
		"$what: after the pre-commit put");

	my $row = undo_row('undo/a', $after);
	like($row, qr/^40001\|/, "$what: the history row has SQLSTATE 40001");
	like($row, qr/could not serialize access.*moved back to version "\Q$va\E"/,
		"$what: and says why and that the label moved back");
	is(current_version('undo/a'), $va, "$what: AWSCURRENT is the version before");
	ok(SmTest::stage_logs_in($node, 'undo/a'), "$what: AWSCURRENT logs in");
	is(succeeded_rows('undo/a', $after), 0, "$what: no succeeded row");
	is(session_count($s1, 'succeeded'), 0, "$what: secretsmgr_stats() counts no success");
	is(session_count($s1, 'failed'), 1, "$what: secretsmgr_stats() counts the rotation failed");
	$s1->quit;
	$s2->quit;

	# the next rotation works from there
	$node->safe_psql('postgres', "SELECT secretsmgr_rotate('undo/a')");
	ok(SmTest::stage_logs_in($node, 'undo/a'), "$what: the next rotation logs in");
}

# ---------------------------------------------------------------------------
# 4. The way back never overrides a later rotation: a rotation waiting for
# the secret's lock while the failing transaction commits goes first (it
# reads the moved label and rotates from there); the way back then finds
# AWSCURRENT elsewhere and leaves it.
{
	my $what = 'a rotation racing the way back';
	my $after = last_id();
	my $s1 = $node->background_psql('postgres', on_error_stop => 0);
	$s1->query_safe('BEGIN');
	$s1->query_safe("SELECT secretsmgr_rotate('undo/a')");
	$s1->query_safe("SELECT secretsmgr_rotate('undo/b')");
	my $r = SmTest::start_psql($node, ["SELECT secretsmgr_rotate('undo/a')"]);
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	  or die 'the racing rotation did not wait';
	SmTest::fault_on('PutSecretValue', 'throttle', 2, secret => 'undo/b');
	$s1->query('COMMIT');
	like($s1->{stderr}, qr/throttl/i, "$what: the commit fails");
	$r->{h}->finish;
	my $v2 = ${ $r->{out} };
	chomp $v2;
	is(${ $r->{err} }, '', "$what: the racing rotation succeeds");
	my $row = undo_row('undo/a', $after);
	like($row, qr/had left version .* so it was not moved/, "$what: the way back leaves the label");
	is(current_version('undo/a'), $v2, "$what: AWSCURRENT is the racing rotation's version");
	ok(SmTest::stage_logs_in($node, 'undo/a'), "$what: AWSCURRENT logs in");
	$s1->quit;
}

ok(!$node->log_contains('secretsmgr stage undo.*(terminated|exited with exit code 1)'),
	'no undo worker failed');
$node->stop;
done_testing();
