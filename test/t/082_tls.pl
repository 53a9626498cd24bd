# HTTPS end to end.  The emulator serves TLS with a CA made for this run
# (test/emulator/tls.py): a certificate for 127.0.0.1/localhost, and one for
# another name on a second port.  With "secretsmgr.ca_file" naming the CA,
# reads go over https; a certificate from another CA, a certificate for
# another host and an unreadable CA file are each refused with their own
# error (SQLSTATE, detail, hint), and nothing is sent: the emulator's log
# and counters show no request, its listener's log a refused or unfinished
# handshake.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use SmTest;

SmTest::start_emulator(tls => 1);
my $tls = $SmTest::TLS_DIR;
my $https = $SmTest::HTTPS_URL;
my $wrong_port = slurp_file("$tls/wrong-host.port");
chomp $wrong_port;
my $emu_log = "$tls/../emulator.log";

SmTest::smctl('create', 'tls/probe', '{"username":"tls_user","password":"tls-pass-082"}');

my $node = SmTest::new_node('tls',
	conf => "secretsmgr.cache_ttl = 0\n"
	  . "secretsmgr.endpoint = '$https'\n"
	  . "secretsmgr.ca_file = '$tls/ca.crt'\n");

my $probe = "SELECT secretsmgr_get_secret_string('tls/probe')::jsonb->>'username';";

# One psql session with verbose errors; settings through PGOPTIONS.
sub run_sql
{
	my ($sql, %settings) = @_;
	my ($stdout, $stderr) = ('', '');
	local $ENV{PGOPTIONS} = join(' ', map { "-c $_=$settings{$_}" } sort keys %settings);
	my $ret = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout, stderr => \$stderr);
	return ($ret, $stdout, $stderr);
}

sub lines_of
{
	my ($file) = @_;
	return 0 unless -e $file;
	my @l = split /\n/, slurp_file($file);
	return scalar @l;
}

# The emulator's request log without its admin path (smctl's own calls).
sub api_log_lines
{
	return scalar grep { !/\tadmin:/ } split /\n/, slurp_file($emu_log);
}

# The lines a listener's log gained since $from lines.
sub new_events
{
	my ($name, $from) = @_;
	my @l = split /\n/, slurp_file("$tls/$name.log");
	return [ @l[ $from .. $#l ] ];
}

sub api_calls { return SmTest::smctl('calls', 'GetSecretValue'); }

# --- over https, with the CA of this run ---------------------------------------
my $events = lines_of("$tls/server.log");
my $api_lines = api_log_lines();
my ($ret, $out, $err) = run_sql($probe);
is($out, 'tls_user', 'a secret is read over https with secretsmgr.ca_file') or diag($err);
is(api_log_lines() - $api_lines, 1, 'the emulator\'s request log shows the one GetSecretValue');
ok((grep { $_ eq 'request POST /' } @{ new_events('server', $events) }),
	'the request arrived over the TLS listener');

($ret, $out, $err) = run_sql($probe,
	'secretsmgr.endpoint' => $https =~ s/127\.0\.0\.1/localhost/r);
is($out, 'tls_user', 'the host name localhost, which the certificate names, is accepted')
  or diag($err);

# --- refused: the four ways, and nothing sent ----------------------------------
# Run $sql with %settings; it must fail with 08006 and nothing may reach the
# emulator: no API call counted, no line in its request log, no request on
# the listener $listener (whose log shows the handshake instead).
sub refused
{
	my ($what, $listener, $settings, $patterns) = @_;
	my $calls = api_calls();
	my $log_lines = api_log_lines();
	my $ev = lines_of("$tls/$listener.log");
	my ($r, $o, $e) = run_sql($probe, %$settings);
	isnt($r, 0, "$what: the read fails");
	like($e, qr/ERROR:  08006: /, "$what: SQLSTATE 08006");
	like($e, $_, "$what: says $_") for @$patterns;
	like($e, qr/DETAIL:  .*GetSecretValue( to Secrets Manager at "[^"]*")? was not sent\./, "$what: the detail says nothing was sent");
	is(api_calls(), $calls, "$what: the emulator counted no call");
	is(api_log_lines(), $log_lines, "$what: the emulator's request log has no new line");
	my $new = new_events($listener, $ev);
	is_deeply([ grep { /^request / } @$new ], [], "$what: no request arrived on the TLS listener")
	  or diag(join("\n", @$new));
	return ($e, $new);
}

my ($e, $new) = refused('a certificate of another CA', 'server',
	{ 'secretsmgr.ca_file' => "$tls/other-ca.crt" },
	[
		qr/ERROR:  08006: could not verify the TLS certificate of Secrets Manager at "\Q$https\E"/,
		qr/DETAIL:  The endpoint's certificate is not signed by a CA of "secretsmgr\.ca_file" \(\Q$tls\E\/other-ca\.crt\)/,
		qr/HINT:  Set "secretsmgr\.ca_file" to the file of the CA that issued/
	]);
ok((grep { /^handshake-failed/ } @$new), 'another CA: the client broke off the handshake')
  or diag(join("\n", @$new));

($e, $new) = refused('the system trust store', 'server',
	{ 'secretsmgr.ca_file' => '' },
	[ qr/DETAIL:  The endpoint's certificate is not signed by a CA of the system's trust store/ ]);

my $wrong = "https://127.0.0.1:$wrong_port";
($e, $new) = refused('a certificate for another host', 'wrong-host',
	{ 'secretsmgr.endpoint' => $wrong },
	[
		qr/ERROR:  08006: the TLS certificate of Secrets Manager at "\Q$wrong\E" is not valid for host "127\.0\.0\.1"/,
		qr/DETAIL:  The endpoint's certificate is issued for other host names than "127\.0\.0\.1"/,
		qr/HINT:  Name the endpoint by a host its certificate is issued for/
	]);
ok(@$new >= 1, 'another host: the client did reach the listener');

($e, $new) = refused('an unreadable CA file', 'server',
	{ 'secretsmgr.ca_file' => "$tls/no-such-ca.crt" },
	[
		qr/ERROR:  08006: could not load the CA certificates of "secretsmgr\.ca_file" \(\Q$tls\E\/no-such-ca\.crt\)/,
		qr/HINT:  Set "secretsmgr\.ca_file" to a readable file of PEM CA certificates/
	]);

# health says the same without failing the query
($ret, $out, $err) = run_sql(
	"SELECT status || ' ' || detail FROM secretsmgr_health() WHERE check_name = 'endpoint';",
	'secretsmgr.ca_file' => "$tls/other-ca.crt");
like($out, qr/^FAIL could not verify the TLS certificate of Secrets Manager/,
	'health reports the untrusted certificate') or diag($err);

$node->stop;
done_testing();
