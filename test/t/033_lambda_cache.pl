# A rotation Lambda's four steps with readers in other backends reading the
# secret (cached, as applications do) throughout.  setSecret changes the
# role and every backend drops its cached copy; a read before finishSecret
# gets the old AWSCURRENT, which no longer logs in.  Nothing tells a backend
# when finishSecret moves the label: the cache keeps such a value at most
# secretsmgr.cache_pending_ttl (5 s by default), so within that bound after
# finishSecret every reader serves a password that logs in, with no manual
# invalidation.
use strict;
use warnings;
use lib "$ENV{SM_TEST_ROOT}/perl";
use SmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# The documented default bound, and the slack a reader's loop needs.
my $bound = 5;
my $slack = 1.5;

my $node = SmTest::new_node('lambda_cache', scram_hba => 1);
SmTest::smctl('reset', '--state');

my $secret = 'lam/app';
SmTest::smctl('create', $secret,
	'{"engine":"postgres","host":"127.0.0.1","username":"lam_app","password":"Lam-Initial-Pw-1"}');
$node->safe_psql('postgres', qq{
	CREATE ROLE lam_app LOGIN;
	SELECT secretsmgr_manage('$secret', 'lam_app');
	SELECT secretsmgr_rotate('$secret');
});
my ($user0, $pw0, $v0) = SmTest::stage_creds($secret);
ok(SmTest::can_login($node, $user0, $pw0), 'AWSCURRENT logs in before the rotation');
my $arn = SmTest::secret_state($secret)->{ARN};

# Readers: each its own backend, each read its own transaction.
my @readers = map { $node->background_psql('postgres') } 1 .. 3;
my $read_sql = "SELECT s ->> 'username', s ->> 'password' FROM "
  . "(SELECT secretsmgr_get_secret('$secret') AS s) x";
my $reads = 0;

# What each reader serves now: list of [user, password].
sub read_all
{
	my @got;
	foreach my $rd (@readers)
	{
		push @got, [ split /\|/, $rd->query_safe($read_sql), 2 ];
		$reads++;
	}
	return @got;
}

my @got = read_all();
is(scalar(grep { $_->[1] eq $pw0 } @got), 3, 'the readers cache AWSCURRENT');

# createSecret: the Lambda puts the new value as AWSPENDING under its token.
my $token = 'a1b2c3d4-0000-4000-8000-' . sprintf('%012d', $$ % 1000000000000);
my $pw1 = 'Lam-New-Pw-' . int(rand(1e9)) . '-x';
SmTest::smctl('put', $secret,
	qq({"engine":"postgres","host":"127.0.0.1","username":"lam_app","password":"$pw1"}),
	'--stages', 'AWSPENDING', '--token', $token);

# setSecret, as the Lambda calls it (the token and ARN as bind values).
$node->safe_psql('postgres', "SELECT secretsmgr_set_secret('$arn', '$token')");
is( $node->safe_psql('postgres',
		"SELECT new_version_id FROM secretsmgr_rotation_history WHERE secret_id = '$secret' "
		  . "AND step = 'setSecret' AND status = 'succeeded' ORDER BY id DESC LIMIT 1"),
	$token, 'setSecret records the version the role now has');

# Readers in between: the old AWSCURRENT, which no longer logs in.
@got = read_all();
is(scalar(grep { $_->[1] eq $pw0 } @got), 3,
	'between setSecret and finishSecret the readers get the old AWSCURRENT');
ok(!SmTest::can_login($node, $user0, $pw0), 'which no longer logs in');

# testSecret
is($node->safe_psql('postgres', "SELECT secretsmgr_test_secret('$arn', '$token')"),
	't', 'testSecret: the pending version logs in');
@got = read_all();

# finishSecret: a signed UpdateSecretVersionStage through boto3, as the
# Lambda does it; nothing is said to the database.
my $py = <<'PY';
import os, sys, boto3
from botocore.config import Config
c = boto3.client("secretsmanager", endpoint_url=os.environ["SM_EMULATOR_URL"],
    region_name="us-east-1", aws_access_key_id=sys.argv[3],
    aws_secret_access_key=sys.argv[4],
    config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
cur = [v for v, s in c.describe_secret(SecretId=sys.argv[1])["VersionIdsToStages"].items()
       if "AWSCURRENT" in s][0]
c.update_secret_version_stage(SecretId=sys.argv[1], VersionStage="AWSCURRENT",
    MoveToVersionId=sys.argv[2], RemoveFromVersionId=cur)
PY
my ($out, $err);
my $t_finish = time();
IPC::Run::run([ '/usr/bin/python3', '-c', $py, $arn, $token,
		$SmTest::ACCESS_KEY, $SmTest::SECRET_KEY ], '>', \$out, '2>', \$err)
  or die "finishSecret failed: $err";
my ($user1, $pw1_now, $v1) = SmTest::stage_creds($secret);
is($v1, $token, 'finishSecret moved AWSCURRENT to the new version');

# Every reader must switch to the new password within the bound.
my @switched_after = (undef) x @readers;
while (time() - $t_finish < $bound + $slack)
{
	my $t = time() - $t_finish;
	@got = read_all();
	for my $i (0 .. $#readers)
	{
		$switched_after[$i] //= $t if $got[$i][1] eq $pw1;
	}
	last unless grep { !defined } @switched_after;
	usleep(200_000);
}
for my $i (0 .. $#readers)
{
	ok(defined $switched_after[$i],
		"reader $i serves the new AWSCURRENT within ${bound} s of finishSecret"
		  . (defined $switched_after[$i] ? sprintf(' (after %.1f s)', $switched_after[$i]) : ''));
}
# What they serve now logs in: a real login with each reader's value.
@got = read_all();
for my $i (0 .. $#readers)
{
	ok(SmTest::can_login($node, $got[$i][0], $got[$i][1]),
		"reader $i: the password it serves logs in");
}

# Once caught up, the value is cached for the whole TTL again.
my $calls = SmTest::api_calls('GetSecretValue');
usleep(($bound + 1) * 1_000_000);
@got = read_all();
is(SmTest::api_calls('GetSecretValue'), $calls,
	'after finishSecret the readers serve from their cache past the short bound');
cmp_ok($reads, '>', 20, "the readers read throughout ($reads reads)");

$_->quit foreach @readers;
$node->stop;
done_testing();
