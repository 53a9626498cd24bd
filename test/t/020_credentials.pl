# The credentials provider chain, one provider at a time, against the
# emulator: the settings, the server's environment, the shared credentials
# file and its profiles, the ECS container endpoint (with its authorization
# token), EC2 IMDSv2, the order between them, the backend-local cache of
# temporary credentials, and the error when nothing provides credentials.
#
# The server's environment decides most providers, so one node is restarted
# with a different environment for each case.  Static keys given as settings
# go through PGOPTIONS, never through SQL text, so that the log check at the
# end means something.
use strict;
use warnings;

use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use SmTest;

my $ecs_token = 'ecs-auth-token-020-' . join('', map { int(rand(10)) } 1 .. 12);
my $url = SmTest::start_emulator(ecs_token => $ecs_token);
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $no_file = "$tmp/no-such-credentials-file";
my $wrong_secret = 'WRONGSECRETKEY/secretsmgr+020xxxxxxxx';

SmTest::smctl('create', 'cred/probe', '{"username":"probe_user","password":"probe-pass-020"}');

my $node = SmTest::new_node('credentials',
	static_keys => 0,
	conf => "secretsmgr.cache_ttl = 0\n");

# Restart the server with exactly these AWS_* variables (and no others): no
# shared credentials file and no instance metadata unless asked for.
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

# Run a psql script in one session (so one backend and one credentials
# cache); %opts: settings => {name => value} passed through PGOPTIONS.
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

# Does one fetch succeed with the credentials the chain finds?
sub fetch_ok
{
	my ($name, %opts) = @_;
	my ($ret, $out, $err) = run_sql($probe, %opts);
	ok($ret == 0 && $out eq 'probe_user', $name)
	  or diag("stdout: $out\nstderr: $err");
	return;
}

# Does one fetch fail, with stderr matching $re?
sub fetch_fails
{
	my ($name, $re, %opts) = @_;
	my ($ret, $out, $err) = run_sql($probe, %opts);
	ok($ret != 0 && $err =~ $re, $name)
	  or diag("ret $ret\nstdout: $out\nstderr: $err");
	return $err;
}

sub hits { return SmTest::smctl('calls', $_[0]); }

my %good_settings = (
	'secretsmgr.access_key_id' => $SmTest::ACCESS_KEY,
	'secretsmgr.secret_access_key' => $SmTest::SECRET_KEY);

# --- nothing configured -----------------------------------------------------
restart_with_env();
my $err = fetch_fails('no provider: "no AWS credentials found" (SQLSTATE 28000)',
	qr/ERROR:\s+28000: no AWS credentials found/);
like($err, qr/\Q$no_file\E" does not exist/,
	'the detail names the shared credentials file it looked for');
like($err, qr/disabled by AWS_EC2_METADATA_DISABLED/,
	'the detail says the instance metadata service is disabled');
like($err, qr/HINT:.*secretsmgr\.access_key_id/, 'the hint names the settings');

# --- environment ------------------------------------------------------------
restart_with_env(
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $SmTest::SECRET_KEY);
fetch_ok('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the server are used');

restart_with_env(AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY);
fetch_fails('half an environment key pair is an error',
	qr/AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not/);

# --- settings take precedence over the environment ---------------------------
restart_with_env(
	AWS_ACCESS_KEY_ID => $SmTest::ACCESS_KEY,
	AWS_SECRET_ACCESS_KEY => $wrong_secret);
my $sigfail = hits('signature_failures');
fetch_fails('wrong environment keys are rejected by the endpoint',
	qr/ERROR:/);
cmp_ok(hits('signature_failures'), '>', $sigfail,
	'the rejection is a signature failure (the environment keys were used)');
fetch_ok('secretsmgr.* settings override the environment',
	settings => \%good_settings);
fetch_fails('one setting without the other is an error',
	qr/"secretsmgr\.access_key_id" is set but "secretsmgr\.secret_access_key" is not/,
	settings => { 'secretsmgr.access_key_id' => $SmTest::ACCESS_KEY });

# --- shared credentials file --------------------------------------------------
my $cred_file = "$tmp/credentials";
append_to_file($cred_file, <<"EOF");
# shared credentials for the secretsmgr tests
[default]
aws_access_key_id = $SmTest::ACCESS_KEY
aws_secret_access_key = $wrong_secret

; the profile the tests name
[secretsmgr-test]
   AWS_Access_Key_Id=$SmTest::ACCESS_KEY\r
aws_secret_access_key   =   $SmTest::SECRET_KEY

[keyless]
region = us-east-1
EOF
restart_with_env(AWS_SHARED_CREDENTIALS_FILE => $cred_file);
$sigfail = hits('signature_failures');
fetch_fails('profile "default" of the shared file is read by default', qr/ERROR:/);
cmp_ok(hits('signature_failures'), '>', $sigfail,
	'its (wrong) keys were the ones sent');
fetch_ok('secretsmgr.profile selects another profile of the shared file',
	settings => { 'secretsmgr.profile' => 'secretsmgr-test' });
fetch_fails('a profile named by secretsmgr.profile must exist',
	qr/ERROR:\s+F0000: profile "missing" not found in shared credentials file/,
	settings => { 'secretsmgr.profile' => 'missing' });
fetch_fails('a named profile without keys is an error',
	qr/profile "keyless" of shared credentials file .* has no keys/,
	settings => { 'secretsmgr.profile' => 'keyless' });

restart_with_env(
	AWS_SHARED_CREDENTIALS_FILE => $cred_file,
	AWS_PROFILE => 'secretsmgr-test');
fetch_ok('AWS_PROFILE selects the profile when the setting is empty');

# --- ECS container endpoint ---------------------------------------------------
restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => $ecs_token);
my $ecs = hits('ecs');
my $gsv = hits('GetSecretValue');
my ($ret, $out, $stderr) = run_sql("$probe\n$probe\n$probe");
is($out, "probe_user\nprobe_user\nprobe_user",
	'AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN')
  or diag($stderr);
is(hits('GetSecretValue') - $gsv, 3, 'three signed calls were made');
is(hits('ecs') - $ecs, 1,
	'the temporary credentials were fetched once for the three calls');

# expired temporary credentials are fetched again within the same session
$ecs = hits('ecs');
($ret, $out, $stderr) = run_sql(
	"$probe\n\\! curl -s -o /dev/null -X POST $url/_admin/expire-credentials\n$probe");
is($out, "probe_user\nprobe_user",
	'a call after the credentials expired under the session succeeds')
  or diag($stderr);
is(hits('ecs') - $ecs, 2, 'the expired credentials were fetched again');

# a container endpoint that misbehaves: errors that say what went wrong
SmTest::smctl('fault', 'ecs', 'malformed');
$err = fetch_fails('a truncated credentials document is an error',
	qr/could not get AWS credentials from the container credentials endpoint/);
like($err, qr/unusable credentials document: the response is not valid JSON/,
	'the detail says the document is unusable, without quoting it');
SmTest::smctl('fault', 'ecs', 'oversized');
$err = fetch_fails('an oversized credentials document is refused',
	qr/could not get AWS credentials from the container credentials endpoint/);
like($err, qr/larger than 65536 bytes/, 'the detail gives the size limit');

# a hung endpoint gives way to statement_timeout at once, and the session's
# next call works on a fresh connection
SmTest::smctl('fault', 'ecs', 'hang', '--delay-ms', '20000');
my $t0 = time;
($ret, $out, $stderr) = run_sql(
	"SET statement_timeout = '300ms';\n"
	  . "\\set ON_ERROR_STOP 0\n$probe\nRESET statement_timeout;\n$probe");
my $elapsed = time - $t0;
note(sprintf('hung endpoint session took %.3f s', $elapsed));
ok($elapsed < 1.5, 'a hung container endpoint is cancelled by statement_timeout');
like($stderr, qr/canceling statement due to statement timeout/,
	'the error is the statement timeout');
is($out, 'probe_user', 'the next call of the session succeeds');

my $token_file = "$tmp/ecs-token";
append_to_file($token_file, "$ecs_token\n");
restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE => $token_file,
	AWS_CONTAINER_AUTHORIZATION_TOKEN => 'not-the-token');
fetch_ok('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is read, and wins over the variable');

restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => 'not-the-token');
$err = fetch_fails('a refused container endpoint is an error',
	qr/could not get AWS credentials from the container credentials endpoint/);
like($err, qr/HTTP status 401/, 'the detail gives the HTTP status');

restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => 'http://192.0.2.10/creds');
fetch_fails('a plain http container endpoint off the allowed hosts is refused',
	qr/AWS_CONTAINER_CREDENTIALS_FULL_URI is not an allowed container credentials endpoint/);

# --- EC2 instance metadata (IMDSv2) ------------------------------------------
restart_with_env(
	AWS_EC2_METADATA_DISABLED => 'false',
	AWS_EC2_METADATA_SERVICE_ENDPOINT => $url);
my $imds_token = hits('imds_token');
my $imds_creds = hits('imds_creds');
($ret, $out, $stderr) = run_sql("$probe\n$probe\n$probe");
is($out, "probe_user\nprobe_user\nprobe_user",
	'IMDSv2 through AWS_EC2_METADATA_SERVICE_ENDPOINT')
  or diag($stderr);
is(hits('imds_token') - $imds_token, 1, 'one IMDSv2 session token for three calls');
is(hits('imds_creds') - $imds_creds, 1, 'one role credentials fetch for three calls');

fetch_ok('static settings still come before the instance metadata service',
	settings => \%good_settings);

# an instance metadata service that does not answer: not found, said in the log
my $port = PostgreSQL::Test::Cluster::get_free_port();
restart_with_env(
	AWS_EC2_METADATA_DISABLED => 'false',
	AWS_EC2_METADATA_SERVICE_ENDPOINT => "http://127.0.0.1:$port");
my $offset = -s $node->logfile;
my $start = time;
$err = fetch_fails('no instance metadata service: "no AWS credentials found"',
	qr/ERROR:\s+28000: no AWS credentials found/);
like($err, qr/instance metadata service gave no credentials/,
	'the detail says the instance metadata service was asked');
ok(time - $start < 10, 'an unreachable instance metadata service fails fast');
$node->wait_for_log(qr/EC2 instance metadata service could not be reached/, $offset);
pass('the server log says why the instance metadata service gave nothing');

# --- nothing secret in the server log ------------------------------------------
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$SmTest::SECRET_KEY\E/, 'the secret access key is not in the log');
unlike($log, qr/\Q$wrong_secret\E/, 'no other secret key is in the log');
unlike($log, qr/\Q$ecs_token\E/, 'the container authorization token is not in the log');

$node->stop;
done_testing();
