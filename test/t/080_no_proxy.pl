# Requests to the credential endpoints (ECS container endpoint, EC2 instance
# metadata) never go through a proxy named in the server's environment,
# while Secrets Manager requests keep honouring it.  A recording proxy on
# loopback (test/proxy/recording_proxy.py) is named in http_proxy,
# HTTP_PROXY, HTTPS_PROXY and ALL_PROXY of the postmaster; credentials come
# from the emulator's container and IMDSv2 endpoints.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use SmTest;

my $ecs_token = 'ecs-auth-token-080-' . join('', map { int(rand(10)) } 1 .. 12);
my $url = SmTest::start_emulator(ecs_token => $ecs_token);
my $tmp = PostgreSQL::Test::Utils::tempdir();

# the proxy: stops by itself when this script ends
my $proxy_log = "$tmp/proxy.log";
my $proxy_pid = fork();
die "fork: $!" unless defined $proxy_pid;
if ($proxy_pid == 0)
{
	exec('/usr/bin/python3', SmTest::test_root() . '/proxy/recording_proxy.py',
		'--port-file', "$tmp/proxy.port", '--log', $proxy_log,
		'--parent-pid', getppid(), '--lifetime', '600')
	  or die "exec: $!";
}
for (1 .. 100)
{
	last if -s "$tmp/proxy.port";
	select(undef, undef, undef, 0.1);
}
die "the recording proxy did not start" unless -s "$tmp/proxy.port";
my $proxy = 'http://127.0.0.1:' . slurp_file("$tmp/proxy.port");
END { kill 'TERM', $proxy_pid if $proxy_pid; }

SmTest::smctl('create', 'proxy/probe', '{"username":"probe_user","password":"probe-pass-080"}');

my $node = SmTest::new_node('no_proxy',
	static_keys => 0,
	conf => "secretsmgr.cache_ttl = 0\n");

# Restart the server with the proxy variables and exactly these AWS_* ones.
sub restart_with_env
{
	my (%env) = @_;
	$node->stop('fast');
	local %ENV = %ENV;
	delete $ENV{$_} for grep { /^(AWS_|no_proxy$|NO_PROXY$)/ } keys %ENV;
	$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
	$ENV{AWS_SHARED_CREDENTIALS_FILE} = "$tmp/no-such-credentials-file";
	$ENV{$_} = $proxy for qw(http_proxy HTTP_PROXY https_proxy HTTPS_PROXY ALL_PROXY all_proxy);
	$ENV{$_} = $env{$_} for keys %env;
	$node->start;
	return;
}

# The requests the proxy carried since the log was emptied.
sub proxied
{
	my $text = slurp_file($proxy_log);
	return [ split /\n/, $text ];
}

sub hits { return SmTest::smctl('calls', $_[0]); }

my $probe = "SELECT secretsmgr_get_secret_string('proxy/probe')::jsonb->>'username';";

# --- ECS container endpoint ----------------------------------------------------
restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => $ecs_token);
truncate($proxy_log, 0);
my $ecs = hits('ecs');
my ($ret, $out, $err) = ('', '', '');
$ret = $node->psql('postgres', $probe, stdout => \$out, stderr => \$err);
is($out, 'probe_user', 'a read with container credentials succeeds') or diag($err);
is(hits('ecs') - $ecs, 1, 'the container endpoint was asked once');
my @lines = @{ proxied() };
is_deeply([ grep { m{/ecs/} } @lines ], [],
	'the container credentials request did not go through the proxy');
ok((grep { m{^POST \Q$url\E/?$} } @lines) >= 1,
	'the Secrets Manager request went through the proxy of the environment')
  or diag(join("\n", @lines));

# --- EC2 instance metadata (IMDSv2) ----------------------------------------------
restart_with_env(
	AWS_EC2_METADATA_DISABLED => 'false',
	AWS_EC2_METADATA_SERVICE_ENDPOINT => $url);
truncate($proxy_log, 0);
my $imds_token = hits('imds_token');
my $imds_creds = hits('imds_creds');
$ret = $node->psql('postgres', $probe, stdout => \$out, stderr => \$err);
is($out, 'probe_user', 'a read with instance metadata credentials succeeds') or diag($err);
is(hits('imds_token') - $imds_token, 1, 'an IMDSv2 session token was fetched');
is(hits('imds_creds') - $imds_creds, 1, 'the role credentials were fetched');
@lines = @{ proxied() };
is_deeply([ grep { m{/latest/} } @lines ], [],
	'no instance metadata request went through the proxy');
ok((grep { m{^POST \Q$url\E/?$} } @lines) >= 1,
	'the Secrets Manager request went through the proxy of the environment')
  or diag(join("\n", @lines));

$node->stop;
done_testing();
