# Credentials through AWS STS, against the emulator's STS: web identity
# (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, as EKS IRSA sets them),
# AssumeRole layered on the chain (secretsmgr.role_arn, external_id,
# role_session_name), their place in the chain, the refresh before expiry
# (the token file read again), the errors of STS mapped to SQLSTATEs, a
# missing or unreadable token file (an error, never another principal), the
# STS endpoint's resolution (setting, AWS_ENDPOINT_URL_STS, regional, FIPS)
# and health naming the source.  Nothing secret in the server log.
use strict;
use warnings;

use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use SmTest;

my $url = SmTest::start_emulator();
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $no_file = "$tmp/no-such-credentials-file";
my $token_file = "$tmp/web-identity-token";
my $irsa_role = 'arn:aws:iam::123456789012:role/irsa-db';
my $central_role = 'arn:aws:iam::123456789012:role/central-secrets';
my $guarded_role = 'arn:aws:iam::123456789012:role/guarded-secrets';
my $lifetime = 130;

# tokens as a projected service account token looks (three base64url parts)
sub new_token
{
	return join('.', map { join('', map { ('A' .. 'Z', 'a' .. 'z', 0 .. 9)[ int(rand(62)) ] } 1 .. 40) } 1 .. 3);
}
my $token1 = new_token();
my $token2 = new_token();

sub write_token
{
	my ($token) = @_;
	open(my $fh, '>', $token_file) or die "$token_file: $!";
	print $fh "$token\n";
	close $fh;
	return;
}
write_token($token1);

SmTest::smctl('create', 'cred/probe', '{"username":"probe_user","password":"probe-pass-021"}');
SmTest::admin('POST', 'sts-config', {
	web_token => $token1,
	lifetime => $lifetime,
	roles => { $guarded_role => { external_id => 'ext-021-id' } } });

my $node = SmTest::new_node('sts',
	static_keys => 0,
	conf => "secretsmgr.cache_ttl = 0\n");

# Restart the server with exactly these AWS_* variables: no shared file and
# no instance metadata unless asked for.
sub restart_with_env
{
	my (%env) = @_;
	$node->stop('fast');
	local %ENV = %ENV;
	delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;
	$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
	$ENV{AWS_SHARED_CREDENTIALS_FILE} = $no_file;
	$ENV{$_} = $env{$_} for keys %env;
	$node->start;
	return;
}

# One psql session (one backend, one credentials cache); settings through
# PGOPTIONS, never through SQL text.
sub run_sql
{
	my ($sql, %opts) = @_;
	my ($stdout, $stderr) = ('', '');
	local $ENV{PGOPTIONS} = join(' ',
		map { "-c $_=$opts{settings}{$_}" } sort keys %{ $opts{settings} // {} });
	my $ret = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout, stderr => \$stderr, on_error_stop => 1);
	return ($ret, $stdout, $stderr);
}

my $probe = "SELECT secretsmgr_get_secret_string('cred/probe')::jsonb->>'username';";
my $health = "SELECT status || ' ' || detail FROM secretsmgr_health() WHERE check_name = 'credentials';";

sub fetch_ok
{
	my ($name, %opts) = @_;
	my ($ret, $out, $err) = run_sql($probe, %opts);
	ok($ret == 0 && $out eq 'probe_user', $name)
	  or diag("stdout: $out\nstderr: $err");
	return;
}

sub fetch_fails
{
	my ($name, $re, %opts) = @_;
	my ($ret, $out, $err) = run_sql($probe, %opts);
	ok($ret != 0 && $err =~ $re, $name)
	  or diag("ret $ret\nstdout: $out\nstderr: $err");
	return $err;
}

sub health_of
{
	my (%opts) = @_;
	my ($ret, $out, $err) = run_sql($health, %opts);
	return $out;
}

sub sts { return SmTest::admin('GET', 'sts'); }
sub sts_calls { return sts()->{calls}{ $_[0] }; }
sub role_calls { return sts()->{sm_calls_by_role}{ $_[0] } // 0; }

my %web_env = (
	AWS_WEB_IDENTITY_TOKEN_FILE => $token_file,
	AWS_ROLE_ARN => $irsa_role,
	AWS_ROLE_SESSION_NAME => 'db-021',
	AWS_ENDPOINT_URL_STS => $url);

# --- web identity from the environment, kept and refreshed before expiry -------
restart_with_env(%web_env);
my $web = sts_calls('AssumeRoleWithWebIdentity');
my $by_irsa = role_calls($irsa_role);
my ($ret, $out, $err) = run_sql("$probe\n$probe");
is($out, "probe_user\nprobe_user",
	'AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: secrets are read as the role')
  or diag($err);
is(sts_calls('AssumeRoleWithWebIdentity') - $web, 1,
	'one AssumeRoleWithWebIdentity for two reads in a session');
is(sts()->{tokens_seen}[-1], $token1, 'STS was handed the token of the file');
is(sts()->{sessions_seen}[-1], 'db-021', 'AWS_ROLE_SESSION_NAME is the session name');
is(role_calls($irsa_role) - $by_irsa, 2,
	'both Secrets Manager calls were signed with the keys STS issued for the role');
like(health_of(), qr/^OK source web identity \(\Q$irsa_role\E\), temporary credentials expiring in [12] min$/,
	'health names the web identity, its role and the expiry');

# The emulator's keys live 130 s: they are kept 60 s, then asked for again
# while still valid, with what the token file holds by then.
$web = sts_calls('AssumeRoleWithWebIdentity');
my $sleep = 62;
($ret, $out, $err) = run_sql(
	"$probe\n"
	  . "\\! curl -s -o /dev/null -X POST -d '{\"web_token\":\"$token2\"}' $url/_admin/sts-config\n"
	  . "\\! printf '%s\\n' '$token2' > '$token_file'\n"
	  . "$probe\n"
	  . "\\! sleep $sleep\n"
	  . "$probe");
is($out, "probe_user\nprobe_user\nprobe_user",
	'reads go on across the refresh of web identity credentials')
  or diag($err);
is(sts_calls('AssumeRoleWithWebIdentity') - $web, 2,
	'the credentials were kept, then refreshed before they expired');
is(sts()->{tokens_seen}[-1], $token2,
	'the refresh read the token file again (its new content went to STS)');

# --- where web identity stands in the chain -----------------------------------
restart_with_env(%web_env,
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $SmTest::SECRET_KEY);
$web = sts_calls('AssumeRoleWithWebIdentity');
fetch_ok('environment keys come before web identity');
is(sts_calls('AssumeRoleWithWebIdentity') - $web, 0, 'STS was not asked');
like(health_of(), qr/^OK source environment, long-term keys$/,
	'health says the environment keys are used');

my $cred_file = "$tmp/credentials";
append_to_file($cred_file, "[default]\naws_access_key_id = $SmTest::ACCESS_KEY\naws_secret_access_key = $SmTest::SECRET_KEY\n");
restart_with_env(%web_env,
	AWS_SHARED_CREDENTIALS_FILE => $cred_file,
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials");
$web = sts_calls('AssumeRoleWithWebIdentity');
my $ecs = SmTest::smctl('calls', 'ecs');
fetch_ok('web identity comes before the shared credentials file and the container endpoint');
is(sts_calls('AssumeRoleWithWebIdentity') - $web, 1, 'STS was asked');
is(SmTest::smctl('calls', 'ecs') - $ecs, 0, 'the container endpoint was not');

# --- a token file that cannot be read: an error, no other principal ------------
restart_with_env(%web_env,
	AWS_WEB_IDENTITY_TOKEN_FILE => "$tmp/missing-token",
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials");
$ecs = SmTest::smctl('calls', 'ecs');
$err = fetch_fails('a missing token file is an error',
	qr/ERROR:\s+58P01: could not open web identity token file ".*missing-token": No such file or directory/);
like($err, qr/DETAIL:.*AWS_WEB_IDENTITY_TOKEN_FILE.*no other source is tried/,
	'the detail names the variable and says no other source is tried');
is(SmTest::smctl('calls', 'ecs') - $ecs, 0,
	'the container endpoint (another principal) was not asked');
like(health_of(), qr/^FAIL could not open web identity token file/,
	'health fails the credentials check, naming the token file');

restart_with_env(%web_env, AWS_WEB_IDENTITY_TOKEN_FILE => $tmp);
fetch_fails('an unreadable token file (a directory) is an error',
	qr/ERROR:\s+\w+: could not read web identity token file/);

my $empty_file = "$tmp/empty-token";
append_to_file($empty_file, "\n");
restart_with_env(%web_env, AWS_WEB_IDENTITY_TOKEN_FILE => $empty_file);
fetch_fails('an empty token file is an error',
	qr/ERROR:\s+F0000: web identity token file ".*empty-token" holds no usable token/);

# a token longer than an access key may be (STS takes up to 20000 characters)
my $long_token = join('.', new_token(), 'x' x 12000, new_token());
write_token($long_token);
SmTest::admin('POST', 'sts-config', { web_token => $long_token });
restart_with_env(%web_env);
fetch_ok('a 12000-character token is read whole and accepted');
is(length(sts()->{tokens_seen}[-1]), length($long_token), 'STS got all of it');
write_token($token2);
SmTest::admin('POST', 'sts-config', { web_token => $token2 });

restart_with_env(AWS_WEB_IDENTITY_TOKEN_FILE => $token_file,
	AWS_ENDPOINT_URL_STS => $url);
fetch_fails('a token file without AWS_ROLE_ARN is an error',
	qr/ERROR:\s+28000: environment variable AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not/);

# --- STS refusing the token, and its other errors --------------------------------
write_token('not-the-token-the-provider-issued');
restart_with_env(%web_env);
$err = fetch_fails('a token STS does not accept: 28000',
	qr/ERROR:\s+28000: could not get AWS credentials of web identity for role "\Q$irsa_role\E"/);
like($err, qr/DETAIL:.*STS answered AssumeRoleWithWebIdentity with InvalidIdentityToken \(HTTP 400, request id [0-9a-f-]+\)/,
	'the detail gives the STS error code and request id');
like($err, qr/HINT:.*OpenID Connect provider/, 'the hint points at the identity provider');
unlike($err, qr/not-the-token/, 'the token is not in the message');
write_token($token2);

my @faults = (
	[ 'AccessDenied', 403, '42501', qr/trust policy/ ],
	[ 'ExpiredTokenException', 400, '28000', qr/token has expired/ ],
	[ 'RegionDisabledException', 403, '55000', qr/Activate STS in this region/ ],
	[ 'Throttling', 400, '53400', qr/throttling/ ],
	[ 'InternalFailure', 500, '08006', qr/try again later/ ]);
for my $f (@faults)
{
	my ($code, $status, $sqlstate, $hint) = @$f;
	# (retryable ones are tried secretsmgr.max_attempts = 3 times)
	SmTest::admin('POST', 'sts-fault',
		{ action => 'AssumeRoleWithWebIdentity', code => $code, status => $status,
		  count => ($sqlstate =~ /^(53400|08006)$/ ? 3 : 1) });
	$err = fetch_fails("STS $code: SQLSTATE $sqlstate",
		qr/ERROR:\s+$sqlstate: could not get AWS credentials of web identity/);
	like($err, qr/HINT:.*$hint/, "STS $code: the hint says what to do");
}
fetch_ok('with the faults gone, web identity works again');

SmTest::admin('POST', 'sts-fault',
	{ action => 'AssumeRoleWithWebIdentity', code => 'Throttling', status => 400, count => 1 });
$web = sts_calls('AssumeRoleWithWebIdentity');
fetch_ok('one Throttling answer is tried again, and the read succeeds');
is(sts_calls('AssumeRoleWithWebIdentity') - $web, 2, 'STS was asked twice');

# a cancel ends the wait between attempts at once
SmTest::admin('POST', 'sts-fault',
	{ action => 'AssumeRoleWithWebIdentity', code => 'Throttling', status => 400, count => 3 });
my $t0 = time;
($ret, $out, $err) = run_sql("SET statement_timeout = '300ms';\n$probe",
	settings => { 'secretsmgr.retry_base_delay' => '20s' });
ok(time - $t0 < 10 && $err =~ /canceling statement due to statement timeout/,
	'statement_timeout ends the backoff between STS attempts')
  or diag("took " . (time - $t0) . " s: $err");
SmTest::admin('POST', 'sts-config', { clear_faults => 1 });

# --- AssumeRole layered on the chain ------------------------------------------
restart_with_env(
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $SmTest::SECRET_KEY,
	AWS_ENDPOINT_URL_STS => $url);
my $assume = sts_calls('AssumeRole');
my $by_central = role_calls($central_role);
($ret, $out, $err) = run_sql("$probe\n$probe\n$health",
	settings => { 'secretsmgr.role_arn' => $central_role });
like($out, qr/^probe_user\nprobe_user\nOK source assumed role \(\Q$central_role\E\) over environment, temporary credentials expiring in [12] min$/,
	'secretsmgr.role_arn: the role is assumed with the environment keys, and health says so')
  or diag($err);
is(sts_calls('AssumeRole') - $assume, 1, 'one AssumeRole for two reads');
is(sts()->{signers}[-1], $SmTest::ACCESS_KEY, 'AssumeRole was signed with the environment key');
is(role_calls($central_role) - $by_central, 3,
	'the Secrets Manager calls (two reads, health\'s endpoint probe) were signed with the assumed role keys');
like(sts()->{sessions_seen}[-1], qr/^secretsmgr-\d+$/, 'a session name is made up when none is set');

fetch_ok('secretsmgr.role_session_name names the session',
	settings => { 'secretsmgr.role_arn' => $central_role,
		'secretsmgr.role_session_name' => 'pg-021@db' });
is(sts()->{sessions_seen}[-1], 'pg-021@db', 'STS got the session name');

$err = fetch_fails('a role whose trust policy wants an external id refuses AssumeRole without it',
	qr/ERROR:\s+42501: could not get AWS credentials of role "\Q$guarded_role\E"/,
	settings => { 'secretsmgr.role_arn' => $guarded_role });
like($err, qr/HINT:.*secretsmgr\.external_id/, 'the hint names secretsmgr.external_id');
fetch_ok('with secretsmgr.external_id the role is assumed',
	settings => { 'secretsmgr.role_arn' => $guarded_role,
		'secretsmgr.external_id' => 'ext-021-id' });
is(sts()->{external_ids}[-1], 'ext-021-id', 'STS got the external id');

restart_with_env(%web_env);
$assume = sts_calls('AssumeRole');
($ret, $out, $err) = run_sql("$probe\n$health",
	settings => { 'secretsmgr.role_arn' => $central_role });
like($out, qr/^probe_user\nOK source assumed role \(\Q$central_role\E\) over web identity \(\Q$irsa_role\E\), /,
	'AssumeRole over web identity: health names both')
  or diag($err);
like(sts()->{signers}[-1], qr/^ASIA/, 'AssumeRole was signed with the web identity keys');

# (the settings exist once the module is loaded: LOAD it first)
($ret, $out, $err) = run_sql(
	"LOAD 'secretsmgr';\nCREATE ROLE sts_021_user LOGIN;\nSET ROLE sts_021_user;\n"
	  . "\\set ON_ERROR_STOP 0\nSET secretsmgr.role_arn = '$central_role';\n"
	  . "SET secretsmgr.sts_endpoint = 'https://sts.example.com/';\n"
	  . "RESET ROLE;\nDROP ROLE sts_021_user;");
like($err, qr/permission denied to set parameter "secretsmgr\.role_arn"/,
	'only a superuser sets secretsmgr.role_arn');
like($err, qr/permission denied to set parameter "secretsmgr\.sts_endpoint"/,
	'only a superuser sets secretsmgr.sts_endpoint');

($ret, $out, $err) = run_sql("LOAD 'secretsmgr';\nSET secretsmgr.role_arn = 'not-an-arn';");
like($err, qr/invalid value for parameter "secretsmgr\.role_arn".*\n.*DETAIL:  A role ARN begins with "arn:"/,
	'a malformed role ARN is refused when set');

# --- role profiles of the shared credentials file --------------------------------
my $role_file = "$tmp/role-credentials";
append_to_file($role_file, <<"EOF");
[base]
aws_access_key_id = $SmTest::ACCESS_KEY
aws_secret_access_key = $SmTest::SECRET_KEY

[by-source-profile]
role_arn = $central_role
source_profile = base
role_session_name = profile-021

[by-container]
role_arn = $guarded_role
credential_source = EcsContainer
external_id = ext-021-id

[by-web-identity]
role_arn = $irsa_role
web_identity_token_file = $token_file

[no-source]
role_arn = $central_role

[chained]
role_arn = $central_role
source_profile = by-source-profile
EOF
restart_with_env(
	AWS_SHARED_CREDENTIALS_FILE => $role_file,
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_ENDPOINT_URL_STS => $url);
$assume = sts_calls('AssumeRole');
($ret, $out, $err) = run_sql("$probe\n$health",
	settings => { 'secretsmgr.profile' => 'by-source-profile' });
like($out, qr/^probe_user\nOK source assumed role \(\Q$central_role\E\) over shared-file, /,
	'role_arn + source_profile: the role is assumed with the source profile\'s keys')
  or diag($err);
is(sts_calls('AssumeRole') - $assume, 1, 'one AssumeRole');
is(sts()->{signers}[-1], $SmTest::ACCESS_KEY, 'signed with the keys of the source profile');
is(sts()->{sessions_seen}[-1], 'profile-021', 'the profile\'s role_session_name is used');

$ecs = SmTest::smctl('calls', 'ecs');
($ret, $out, $err) = run_sql("$probe\n$health",
	settings => { 'secretsmgr.profile' => 'by-container' });
like($out, qr/^probe_user\nOK source assumed role \(\Q$guarded_role\E\) over container, /,
	'role_arn + credential_source EcsContainer (and the profile\'s external_id)')
  or diag($err);
is(SmTest::smctl('calls', 'ecs') - $ecs, 1, 'the container endpoint gave the base credentials');
is(sts()->{external_ids}[-1], 'ext-021-id', 'the profile\'s external_id went to STS');

$web = sts_calls('AssumeRoleWithWebIdentity');
($ret, $out, $err) = run_sql("$probe\n$health",
	settings => { 'secretsmgr.profile' => 'by-web-identity' });
like($out, qr/^probe_user\nOK source web identity \(\Q$irsa_role\E\), /,
	'role_arn + web_identity_token_file in a profile')
  or diag($err);
is(sts_calls('AssumeRoleWithWebIdentity') - $web, 1, 'STS was asked with the token');

fetch_fails('a role profile without a source of credentials is an error',
	qr/ERROR:\s+F0000: profile "no-source" of shared credentials file ".*" has role_arn but no source of credentials/,
	settings => { 'secretsmgr.profile' => 'no-source' });
fetch_fails('a chain of role profiles is refused',
	qr/ERROR:\s+F0000: source_profile "by-source-profile" of profile "chained" .* has no keys\n.*DETAIL:  The source profile is itself a role profile/,
	settings => { 'secretsmgr.profile' => 'chained' });

# --- endpoints: setting, http only on loopback, regional, FIPS -----------------
restart_with_env(
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $SmTest::SECRET_KEY);
fetch_ok('secretsmgr.sts_endpoint is used',
	settings => { 'secretsmgr.role_arn' => $central_role,
		'secretsmgr.sts_endpoint' => $url });
($ret, $out, $err) = run_sql("LOAD 'secretsmgr';\nSET secretsmgr.sts_endpoint = 'http://192.0.2.1/';");
like($err, qr/ERROR:\s+22023: invalid value for parameter "secretsmgr\.sts_endpoint"/,
	'a plain http STS endpoint off loopback is refused');

$err = fetch_fails('without an endpoint, the regional STS endpoint is used',
	qr/ERROR:\s+08006: could not get AWS credentials of role/,
	settings => { 'secretsmgr.role_arn' => $central_role,
		'secretsmgr.connect_timeout' => '500ms' });
like($err, qr{"https://sts\.us-east-1\.amazonaws\.com/" could not be reached},
	'the error names https://sts.<region>.amazonaws.com');

$err = fetch_fails('secretsmgr.use_fips_endpoint selects the FIPS STS endpoint',
	qr/ERROR:\s+08006: could not get AWS credentials of role/,
	settings => { 'secretsmgr.role_arn' => $central_role,
		'secretsmgr.use_fips_endpoint' => 'on',
		'secretsmgr.connect_timeout' => '500ms' });
like($err, qr{"https://sts-fips\.us-east-1\.amazonaws\.com/" could not be reached},
	'the error names https://sts-fips.<region>.amazonaws.com');

my $config = "SELECT detail FROM secretsmgr_health() WHERE check_name = 'configuration';";
($ret, $out, $err) = run_sql($config,
	settings => { 'secretsmgr.endpoint' => '',
		'secretsmgr.use_fips_endpoint' => 'on' });
like($out, qr{endpoint https://secretsmanager-fips\.us-east-1\.amazonaws\.com/},
	'secretsmgr.use_fips_endpoint selects secretsmanager-fips.<region>')
  or diag($err);

restart_with_env(
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $SmTest::SECRET_KEY,
	AWS_USE_FIPS_ENDPOINT => 'true');
($ret, $out, $err) = run_sql($config, settings => { 'secretsmgr.endpoint' => '' });
like($out, qr{endpoint https://secretsmanager-fips\.us-east-1\.amazonaws\.com/},
	'AWS_USE_FIPS_ENDPOINT=true selects secretsmanager-fips.<region>')
  or diag($err);
restart_with_env(
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $SmTest::SECRET_KEY);
($ret, $out, $err) = run_sql($config, settings => { 'secretsmgr.endpoint' => '' });
like($out, qr{endpoint https://secretsmanager\.us-east-1\.amazonaws\.com/},
	'without FIPS, secretsmanager.<region>')
  or diag($err);

# --- nothing secret in the server log ------------------------------------------
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$token1\E/, 'the first web identity token is not in the log');
unlike($log, qr/\Q$token2\E/, 'the second web identity token is not in the log');
unlike($log, qr/not-the-token-the-provider-issued/, 'the refused token is not in the log');
unlike($log, qr/\Q$SmTest::SECRET_KEY\E/, 'the secret access key is not in the log');

$node->stop;
done_testing();
