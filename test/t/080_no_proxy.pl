# Requests to the credential endpoints (ECS container endpoint, EC2 instance
# metadata) never go through a proxy named in the server's environment,
# while Secrets Manager requests keep honouring it.  A recording proxy on
# loopback (test/proxy/recording_proxy.py) is named in http_proxy,
# HTTP_PROXY, HTTPS_PROXY and ALL_PROXY of the postmaster; credentials come
# from the emulator's container and IMDSv2 endpoints.
#
# Over https (the emulator's TLS listener, its CA in secretsmgr.ca_file) the
# request goes through the proxy as a CONNECT tunnel; NO_PROXY exempts the
# host (by name, address or CIDR block); a proxy URL with a user and
# password authenticates to a proxy that requires it, and that password is
# never in a message, the health check or the server log.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use SmTest;

my $ecs_token = 'ecs-auth-token-080-' . join('', map { int(rand(10)) } 1 .. 12);
my $url = SmTest::start_emulator(ecs_token => $ecs_token, tls => 1);
my $https = $SmTest::HTTPS_URL;
my $tls = $SmTest::TLS_DIR;
my $tmp = PostgreSQL::Test::Utils::tempdir();

# A recording proxy (name, extra arguments): its URL.  It stops by itself
# when this script ends.
my @proxy_pids;
sub start_proxy
{
	my ($name, @args) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec('/usr/bin/python3', SmTest::test_root() . '/proxy/recording_proxy.py',
			'--port-file', "$tmp/$name.port", '--log', "$tmp/$name.log",
			'--parent-pid', getppid(), '--lifetime', '600', @args)
		  or die "exec: $!";
	}
	push @proxy_pids, $pid;
	for (1 .. 100)
	{
		last if -s "$tmp/$name.port";
		select(undef, undef, undef, 0.1);
	}
	die "the recording proxy $name did not start" unless -s "$tmp/$name.port";
	return 'http://127.0.0.1:' . slurp_file("$tmp/$name.port");
}
END { kill 'TERM', $_ for @proxy_pids; }

my $proxy_log = "$tmp/proxy.log";
my $proxy = start_proxy('proxy');
my $proxy_password = 'proxy-pass-080-' . join('', map { int(rand(10)) } 1 .. 8);
my $auth_proxy = start_proxy('auth', '--require-auth', "proxyuser:$proxy_password");
(my $auth_hostport = $auth_proxy) =~ s{^http://}{};

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
	for (keys %env)
	{
		if (defined $env{$_}) { $ENV{$_} = $env{$_}; }
		else { delete $ENV{$_}; }
	}
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

# --- https: a CONNECT tunnel, NO_PROXY, a proxy with a password ----------------
my %https_settings = ('secretsmgr.endpoint' => $https, 'secretsmgr.ca_file' => "$tls/ca.crt");
(my $https_hostport = $https) =~ s{^https://}{};

# psql with the https endpoint; returns (stdout, stderr).
sub over_https
{
	my ($sql) = @_;
	my ($o, $e) = ('', '');
	local $ENV{PGOPTIONS} = join(' ', map { "-c $_=$https_settings{$_}" } sort keys %https_settings);
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql", stdout => \$o, stderr => \$e);
	return ($o, $e);
}

# the requests the TLS listener received
sub tls_requests
{
	return scalar grep { /^request POST / } split /\n/, slurp_file("$tls/server.log");
}

restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => $ecs_token);
truncate($proxy_log, 0);
$ecs = hits('ecs');
my $arrived = tls_requests();
($out, $err) = over_https($probe);
is($out, 'probe_user', 'https through the proxy of HTTPS_PROXY: the read succeeds') or diag($err);
@lines = @{ proxied() };
is_deeply(\@lines, ["CONNECT $https_hostport"],
	'the Secrets Manager request went through the proxy as a CONNECT tunnel, the container endpoint did not');
is(hits('ecs') - $ecs, 1, 'the container endpoint was asked directly');
ok(tls_requests() > $arrived, 'the request reached the TLS listener through the tunnel');

# health names the proxy in use
($out, $err) = over_https("SELECT detail FROM secretsmgr_health() WHERE check_name = 'configuration';");
like($out, qr/through the proxy \Q$proxy\E of https_proxy/, 'health names the proxy and its variable')
  or diag($err);

for my $exempt ('127.0.0.1', 'example.com, 127.0.0.0/8', '*')
{
	restart_with_env(
		AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
		AWS_CONTAINER_AUTHORIZATION_TOKEN => $ecs_token,
		NO_PROXY => $exempt);
	truncate($proxy_log, 0);
	$arrived = tls_requests();
	($out, $err) = over_https($probe);
	is($out, 'probe_user', "NO_PROXY=\"$exempt\": the read succeeds") or diag($err);
	is_deeply(proxied(), [], "NO_PROXY=\"$exempt\": nothing went through the proxy");
	ok(tls_requests() > $arrived, "NO_PROXY=\"$exempt\": the request went straight to the endpoint");
}

restart_with_env(
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => $ecs_token,
	no_proxy => 'localhost, .example.com');
truncate($proxy_log, 0);
($out, $err) = over_https($probe);
is($out, 'probe_user', 'no_proxy not covering 127.0.0.1: the read succeeds') or diag($err);
is_deeply(proxied(), ["CONNECT $https_hostport"], 'no_proxy not covering the host: the proxy is used');

# a proxy that requires a user and password
my $log_offset = -s $node->logfile;
my @auth_env = (
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/ecs/credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => $ecs_token,
	https_proxy => undef, all_proxy => undef, ALL_PROXY => undef);
restart_with_env(@auth_env, HTTPS_PROXY => "http://proxyuser:$proxy_password\@$auth_hostport");
($out, $err) = over_https($probe);
is($out, 'probe_user', 'a proxy URL with user and password authenticates to the proxy') or diag($err);
is_deeply([ split /\n/, slurp_file("$tmp/auth.log") ], ["CONNECT $https_hostport"],
	'the authenticating proxy carried the tunnel without asking again');
($out, $err) = over_https("SELECT detail FROM secretsmgr_health() WHERE check_name = 'configuration';");
like($out, qr{through the proxy http://\*\*\*\@\Q$auth_hostport\E of HTTPS_PROXY},
	'health shows the proxy without its user and password');

restart_with_env(@auth_env, HTTPS_PROXY => "http://proxyuser:wrong-$proxy_password\@$auth_hostport");
($out, $err) = over_https($probe);
like($err, qr/ERROR:  08006: /, 'a wrong proxy password: the read fails with 08006');
unlike($err, qr/\Q$proxy_password\E|proxyuser/, 'a wrong proxy password: no user or password in the error');
like(slurp_file("$tmp/auth.log"), qr/^CONNECT \Q$https_hostport\E 407$/m, 'the proxy refused it with 407');

restart_with_env(@auth_env, HTTPS_PROXY => "socks9://proxyuser:$proxy_password\@$auth_hostport");
($out, $err) = over_https($probe);
like($err, qr/ERROR:  08006: /, 'a proxy URL of another scheme: the read fails with 08006');
($out, $err) = over_https("SELECT status || ' ' || detail FROM secretsmgr_health() WHERE check_name = 'configuration';");
like($out, qr/^FAIL the proxy named in HTTPS_PROXY is not an http:\/\/ or https:\/\/ URL/,
	'health says the proxy variable is unusable');
unlike($out . $err, qr/\Q$proxy_password\E|proxyuser/, 'no user or password in what health says');

$node->stop;
unlike(substr(slurp_file($node->logfile), $log_offset), qr/\Q$proxy_password\E|proxyuser/,
	'the proxy user and password never reached the server log');
done_testing();
