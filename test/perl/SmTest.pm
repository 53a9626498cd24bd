# SmTest.pm — helpers shared by the TAP suites of secretsmgr.
#
# start_emulator() starts test/emulator/smemu.py on a free loopback port for
# this test script (it exits with the script); new_node() makes a
# PostgreSQL::Test::Cluster whose secretsmgr settings point at it; smctl()
# drives the emulator's admin path.
package SmTest;

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our $ACCESS_KEY = 'AKIDSECRETSMGRTEST';
our $SECRET_KEY = 'TESTSECRETKEY/secretsmgr+EXAMPLE';
our $EMULATOR_URL;
# With start_emulator(tls => 1): the directory of the test PKI (ca.crt,
# other-ca.crt, and each https listener's <name>.port and <name>.log, see
# test/emulator/tls.py) and the https URL of the listener for 127.0.0.1.
our $TLS_DIR;
our $HTTPS_URL;
my $emulator_pid;

# The test/ directory (TAP scripts run from it).
sub test_root
{
	return $ENV{SM_TEST_ROOT} // File::Spec->rel2abs(dirname(__FILE__) . '/..');
}

# Start the emulator once per script; returns its base URL (plain http,
# what smctl and the admin path use).  tls => 1 also serves https with a
# test PKI made now ($TLS_DIR, $HTTPS_URL).
sub start_emulator
{
	my (%opts) = @_;
	return $EMULATOR_URL if $EMULATOR_URL && !$opts{fresh};
	my $root = test_root();
	my $dir = PostgreSQL::Test::Utils::tempdir();
	if ($opts{tls})
	{
		$TLS_DIR = "$dir/tls";
		system('/usr/bin/python3', "$root/emulator/tls.py", 'make-pki', $TLS_DIR) == 0
		  or die "could not make the test PKI";
	}
	my @cmd = (
		'/usr/bin/python3', "$root/emulator/smemu.py",
		'--port', '0', '--port-file', "$dir/port",
		'--access-key', $ACCESS_KEY, '--secret-key', $SECRET_KEY,
		'--parent-pid', $$, '--log', "$dir/emulator.log");
	push @cmd, '--ecs-token', $opts{ecs_token} if $opts{ecs_token};
	push @cmd, '--temp-cred-ttl', $opts{temp_cred_ttl} if $opts{temp_cred_ttl};
	push @cmd, '--tls-dir', $TLS_DIR if $opts{tls};
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>>', "$dir/emulator.out");
		open(STDERR, '>&', \*STDOUT);
		exec(@cmd) or die "exec: $!";
	}
	$emulator_pid = $pid;
	for (1 .. 100)
	{
		last if -s "$dir/port";
		select(undef, undef, undef, 0.1);
	}
	die "emulator did not start" unless -s "$dir/port";
	my $port = PostgreSQL::Test::Utils::slurp_file("$dir/port");
	chomp $port;
	$EMULATOR_URL = "http://127.0.0.1:$port";
	$ENV{SM_EMULATOR_URL} = $EMULATOR_URL;
	if ($opts{tls})
	{
		my $tls_port = PostgreSQL::Test::Utils::slurp_file("$TLS_DIR/server.port");
		chomp $tls_port;
		$HTTPS_URL = "https://127.0.0.1:$tls_port";
	}
	return $EMULATOR_URL;
}

END
{
	kill 'TERM', $emulator_pid if $emulator_pid;
}

# Run test/emulator/smctl with @args; returns stdout (chomped), dies on failure.
sub smctl
{
	my @args = @_;
	my $root = test_root();
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ '/usr/bin/python3', "$root/emulator/smctl", @args ],
		'>', \$stdout, '2>', \$stderr);
	die "smctl @args failed: $stderr" unless $ok;
	chomp $stdout;
	return $stdout;
}

# A started node with the extension created in database "postgres".
#   static_keys => 0    leave the secretsmgr.access_key_id/secret_access_key out
#   env => {K => V}     environment of the server (credentials chain tests)
#   conf => "text"      extra postgresql.conf lines
#   scram_hba => 1      password logins (scram-sha-256) over TCP for every role
#                       but the bootstrap superuser
#   allows_streaming => 1, has_archiving => 1, install_path => DIR (a server
#                       of another major), no_data_checksums => 1 as in
#                       PostgreSQL::Test::Cluster
#   no_start => 1       configured only: neither started nor given the
#                       extension (the new side of pg_upgrade)
sub new_node
{
	my ($name, %opts) = @_;
	my $url = start_emulator();
	my $node = PostgreSQL::Test::Cluster->new($name,
		$opts{install_path} ? (install_path => $opts{install_path}) : ());
	$node->init(
		allows_streaming => $opts{allows_streaming} // 0,
		has_archiving => $opts{has_archiving} // 0,
		no_data_checksums => $opts{no_data_checksums} // 0);
	my $conf = "secretsmgr.endpoint = '$url'\n"
	  . "secretsmgr.region = 'us-east-1'\n"
	  . "secretsmgr.retry_base_delay = '10ms'\n"
	  . "secretsmgr.request_timeout = '3s'\n"
	  . "log_statement = 'all'\n"
	  . "log_min_messages = debug1\n"
	  . "log_min_error_statement = debug5\n"
	  . "listen_addresses = '127.0.0.1'\n"
	  . "password_encryption = 'scram-sha-256'\n";
	if ($opts{static_keys} // 1)
	{
		$conf .= "secretsmgr.access_key_id = '$ACCESS_KEY'\n"
		  . "secretsmgr.secret_access_key = '$SECRET_KEY'\n";
	}
	$conf .= $opts{conf} if $opts{conf};
	$node->append_conf('postgresql.conf', $conf);
	if ($opts{scram_hba})
	{
		my $boot = scalar getpwuid($<);
		open(my $fh, '>', $node->data_dir . '/pg_hba.conf') or die;
		print $fh "local all $boot trust\n";
		print $fh "host all $boot 127.0.0.1/32 trust\n";
		print $fh "local all all scram-sha-256\n";
		print $fh "host all all 127.0.0.1/32 scram-sha-256\n";
		close $fh;
	}
	return $node if $opts{no_start};
	# never reach for the real instance metadata service from a test
	local %ENV = (%ENV, AWS_EC2_METADATA_DISABLED => 'true', %{ $opts{env} // {} });
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION secretsmgr');
	return $node;
}

# (Never use connect_ok without sql => ...: its default query text holds the
# connection string, password included, and log_statement would log it.)
# A libpq connection string that logs in as $user with $password over TCP.
sub login_connstr
{
	my ($node, $user, $password) = @_;
	return "host=127.0.0.1 port=" . $node->port
	  . " dbname=postgres user=$user password='"
	  . _escape($password) . "'";
}

# Does $user log in with $password? (a real libpq login)
sub can_login
{
	my ($node, $user, $password) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql('postgres', 'SELECT 1',
		stdout => \$stdout, stderr => \$stderr, extra_params => ['-w'],
		connstr => login_connstr($node, $user, $password));
	return $ret == 0 && $stdout eq '1';
}

sub _escape
{
	my ($s) = @_;
	$s =~ s/\\/\\\\/g;
	$s =~ s/'/\\'/g;
	return $s;
}

# ---------------------------------------------------------------------------
# Helpers of the reliability suites (050_fault_matrix, 060_concurrency,
# 070_leak_audit).  The emulator's admin API is called from Perl directly
# (no Python start per call); secret state is read from the emulator, never
# through SQL text.

use HTTP::Tiny;
use JSON::PP ();
use Time::HiRes ();

my $admin_http;

# One admin call: admin('GET', 'calls'), admin('POST', 'fault', {...}).
# Returns the decoded JSON answer; dies on failure.
sub admin
{
	my ($method, $path, $body) = @_;
	$admin_http //= HTTP::Tiny->new(timeout => 60, keep_alive => 1);
	my %req;
	if (defined $body)
	{
		$req{content} = JSON::PP::encode_json($body);
		$req{headers} = { 'Content-Type' => 'application/json' };
	}
	my $r = $admin_http->request($method, start_emulator() . "/_admin/$path", \%req);
	die "emulator admin $method $path: $r->{status} $r->{content}\n"
	  unless $r->{success};
	return length($r->{content}) ? JSON::PP::decode_json($r->{content}) : {};
}

# Queue count faults for op: fault_on('PutSecretValue', 'hang', 2,
# delay_ms => 3000, secret => 'app/x').
sub fault_on
{
	my ($op, $fault, $count, %o) = @_;
	my %body = (operation => $op, fault => $fault, count => $count // 1);
	$body{delay_ms} = $o{delay_ms} if defined $o{delay_ms};
	$body{secret_id} = $o{secret} if defined $o{secret};
	admin('POST', 'fault', \%body);
	return;
}

# Queue a fault so that it hits the n-th call of op (the earlier ones pass
# through after 1 ms).
sub fault_nth
{
	my ($op, $nth, $fault, $count, %o) = @_;
	fault_on($op, 'delay', $nth - 1, delay_ms => 1, secret => $o{secret})
	  if $nth > 1;
	fault_on($op, $fault, $count, %o);
	return;
}

# Faults, denies and call counters cleared (secrets kept).
sub reset_emulator
{
	admin('POST', 'reset', {});
	return;
}

# Calls that reached the emulator (signature checked) since the last reset.
sub api_calls
{
	my ($op) = @_;
	return admin('GET', 'calls')->{calls}{$op} // 0;
}

# The requests the emulator has answered since the last reset, in order:
# a list of {op, secret_id, status}; a faulted one is "Op[fault]".
sub answered_calls
{
	return @{ admin('GET', 'calls')->{recent} };
}

# Wait until op has been called n times (the n-th call may still be held
# by a fault); false after timeout seconds.
sub wait_for_call
{
	my ($op, $n, $timeout) = @_;
	my $until = Time::HiRes::time() + ($timeout // 30);
	while (Time::HiRes::time() < $until)
	{
		return 1 if api_calls($op) >= $n;
		Time::HiRes::usleep(20_000);
	}
	return 0;
}

# Wait until the emulator has answered op n times normally (a delayed call
# counts once it has been performed).
sub wait_for_answer
{
	my ($op, $n, $timeout) = @_;
	my $until = Time::HiRes::time() + ($timeout // 30);
	while (Time::HiRes::time() < $until)
	{
		return 1 if (grep { $_->{op} eq $op } answered_calls()) >= $n;
		Time::HiRes::usleep(20_000);
	}
	return 0;
}

sub _uri_escape
{
	my ($s) = @_;
	$s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord($1))/ge;
	return $s;
}

# The secret as the emulator holds it: {ARN, Name, Versions => [{VersionId,
# VersionStages, SecretString | SecretBinary}, ...]}.
sub secret_state
{
	my ($name) = @_;
	return admin('GET', 'secret?id=' . _uri_escape($name));
}

# { VersionId => [stages] } of the versions that carry a label.
sub stage_map
{
	my ($name) = @_;
	my %m;
	foreach my $v (@{ secret_state($name)->{Versions} })
	{
		$m{ $v->{VersionId} } = [ sort @{ $v->{VersionStages} } ]
		  if @{ $v->{VersionStages} };
	}
	return \%m;
}

# (username, password, VersionId) of the version holding stage, from the
# emulator; () when no version holds it.
sub stage_creds
{
	my ($name, $stage) = @_;
	$stage //= 'AWSCURRENT';
	foreach my $v (@{ secret_state($name)->{Versions} })
	{
		next unless grep { $_ eq $stage } @{ $v->{VersionStages} };
		my $doc = eval { JSON::PP::decode_json($v->{SecretString} // '') } // {};
		return ($doc->{username}, $doc->{password}, $v->{VersionId});
	}
	return ();
}

# Does the version holding stage log in as the user it names?
sub stage_logs_in
{
	my ($node, $name, $stage) = @_;
	my ($user, $pw) = stage_creds($name, $stage);
	return defined $pw && can_login($node, $user, $pw);
}

# Start psql in the background with one -c per element of $cmds (each its
# own transaction, in one session).  Returns {h => harness, out => \$stdout,
# err => \$stderr}; finish with $r->{h}->finish.
sub start_psql
{
	my ($node, $cmds, %o) = @_;
	my ($in, $out, $err) = ('', '', '');
	my @cmd = ('psql', '-XAtq', '-d', $node->connstr('postgres'),
		@{ $o{extra_params} // [] }, map { ('-c', $_) } @$cmds);
	local %ENV = (%ENV, %{ $o{env} // {} });
	my $h = IPC::Run::start(\@cmd, '<', \$in, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

# pid of the other backend whose current query contains $text; '' if none.
sub backend_running
{
	my ($node, $text) = @_;
	$text =~ s/'/''/g;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
		  . "AND state = 'active' AND strpos(query, '$text') > 0 LIMIT 1");
}

# The documentation page the suites' figures belong to: docs/reliability.md
# of the first of SM_SOURCE_ROOT and the parent of the test directory that
# holds secretsmgr.control (test/run copies docs/ into its work directory).
sub docs_file
{
	foreach my $d ($ENV{SM_SOURCE_ROOT}, test_root() . '/..')
	{
		return File::Spec->rel2abs("$d/docs/reliability.md")
		  if defined $d && -f "$d/secretsmgr.control";
	}
	return undef;
}

# The tables of a Markdown text, reduced to what does not vary from run to
# run: each header row whole and each body row's first cell, with every
# number replaced by N (figures, timings and counts are left out).
sub table_shape
{
	my ($text) = @_;
	my @lines = grep { /^\|/ } split(/\n/, $text);
	my @shape;
	for my $i (0 .. $#lines)
	{
		next if $lines[$i] =~ /^\|[-| :]+\|$/;
		my $header = $i < $#lines && $lines[ $i + 1 ] =~ /^\|[-| :]+\|$/;
		my $row = $lines[$i];
		$row = $1 if !$header && $row =~ /^(\|[^|]*\|)/;
		$row =~ s/\d+(\.\d+)?/N/g;
		push @shape, $row;
	}
	return join("\n", @shape);
}

# A suite's figures for the "generated: $section" part of
# docs/reliability.md.  A test never writes the documentation: with
# SM_FIGURES_DIR set, $text goes to $SM_FIGURES_DIR/$section.md, and
# `make docs-figures` puts it into the page.  Always compares (two
# assertions): the page has the section, and the section's tables have the
# columns and rows of this run's (table_shape).  Returns 1 when written.
sub record_figures
{
	my ($section, $text) = @_;
	my $file = docs_file();
	my $begin = "<!-- BEGIN generated: $section -->";
	my $end = "<!-- END generated: $section -->";
	my $recorded;
	if (defined $file)
	{
		my $doc = PostgreSQL::Test::Utils::slurp_file($file);
		$recorded = $1 if $doc =~ /\Q$begin\E\n(.*?)\Q$end\E/s;
	}
	ok(defined $recorded, "docs/reliability.md has the generated section \"$section\"");
	is(table_shape($recorded // ''), table_shape($text),
		"docs/reliability.md records the tables of \"$section\" with this run's columns and rows"
		  . " (make docs-figures writes them)");
	my $dir = $ENV{SM_FIGURES_DIR};
	return 0 unless $dir;
	my $out = "$dir/$section.md";
	open(my $fh, '>', $out) or die "SM_FIGURES_DIR: cannot write $out: $!\n";
	print $fh "$text\n";
	close($fh) or die "SM_FIGURES_DIR: cannot write $out: $!\n";
	return 1;
}

1;
