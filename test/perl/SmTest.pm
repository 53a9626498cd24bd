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
my $emulator_pid;

# The test/ directory (TAP scripts run from it).
sub test_root
{
	return $ENV{SM_TEST_ROOT} // File::Spec->rel2abs(dirname(__FILE__) . '/..');
}

# Start the emulator once per script; returns its base URL.
sub start_emulator
{
	my (%opts) = @_;
	return $EMULATOR_URL if $EMULATOR_URL && !$opts{fresh};
	my $root = test_root();
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my @cmd = (
		'/usr/bin/python3', "$root/emulator/smemu.py",
		'--port', '0', '--port-file', "$dir/port",
		'--access-key', $ACCESS_KEY, '--secret-key', $SECRET_KEY,
		'--parent-pid', $$, '--log', "$dir/emulator.log");
	push @cmd, '--ecs-token', $opts{ecs_token} if $opts{ecs_token};
	push @cmd, '--temp-cred-ttl', $opts{temp_cred_ttl} if $opts{temp_cred_ttl};
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
#   allows_streaming => 1, has_archiving => 1 as in PostgreSQL::Test::Cluster
sub new_node
{
	my ($name, %opts) = @_;
	my $url = start_emulator();
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(
		allows_streaming => $opts{allows_streaming} // 0,
		has_archiving => $opts{has_archiving} // 0);
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

1;
