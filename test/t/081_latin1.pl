# A database whose encoding is not UTF8 (LATIN1): a secret whose JSON holds
# a \u escape of a character LATIN1 cannot represent gets a clear error
# (SQLSTATE, detail, hint) that quotes none of the secret's characters, and
# nothing of it reaches the server log.  PostgreSQL's JSON lexer would
# convert the escape with pg_unicode_to_server(), whose error prints the
# character's bytes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use SmTest;

SmTest::start_emulator();
my $marker = 'Zhe-Marker-' . join('', map { int(rand(10)) } 1 .. 8);
# \u0416 is CYRILLIC CAPITAL LETTER ZHE, UTF-8 bytes d0 96: not in LATIN1
SmTest::smctl('create', 'enc/zhe',
	'{"username":"enc_user","password":"' . $marker . '\u0416-tail"}');
SmTest::smctl('create', 'enc/ascii', '{"username":"enc_user","password":"Ascii-Pw-081"}');

my $node = SmTest::new_node('latin1', conf => "secretsmgr.cache_ttl = 0\n");
for my $enc ('LATIN1', 'UTF8')
{
	my $db = lc($enc) . 'db';
	$node->safe_psql('postgres',
		"CREATE DATABASE $db ENCODING '$enc' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
	$node->safe_psql($db, 'CREATE EXTENSION secretsmgr');
}

my $offset = -s $node->logfile;

# Run sql in db; returns (exit code, stdout, stderr) with verbose errors.
sub run_sql
{
	my ($db, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	my $ret = $node->psql($db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout, stderr => \$stderr);
	return ($ret, $stdout, $stderr);
}

# Nothing of the secret in text: not the marker, not the character's bytes
# (raw, or as PostgreSQL prints them), not what follows it.
sub no_secret_bytes
{
	my ($text, $name) = @_;
	unlike($text, qr/\Q$marker\E|\xd0\x96|0xd0|-tail/i, $name);
	return;
}

my ($ret, $out, $err) = run_sql('latin1db', "SELECT secretsmgr_get_secret('enc/zhe');");
isnt($ret, 0, 'LATIN1: reading the secret as jsonb fails');
like($err, qr/ERROR:\s+22P05: value of secret "enc\/zhe" cannot be read as jsonb in this database/,
	'the error has SQLSTATE 22P05 and names the secret');
like($err, qr/DETAIL:\s+It contains a \\u escape of a character outside ASCII, and the database encoding is LATIN1/,
	'the detail says why');
like($err, qr/HINT:\s+Use secretsmgr_get_secret_string\(\)/, 'the hint says what to do');
no_secret_bytes($err, 'the error quotes nothing of the secret');

# the other read paths of the same value: no conversion error either
($ret, $out, $err) = run_sql('latin1db',
	"SELECT secretsmgr_get_secret_string('enc/zhe') LIKE '%\\\\u0416%' AS text_as_is;");
is($out, 't', 'LATIN1: the JSON text itself is read as it is (it is ASCII)') or diag($err);
no_secret_bytes($err, 'no message quotes the secret');
($ret, $out, $err) = run_sql('latin1db',
	"SELECT secretsmgr_get_secrets(ARRAY['enc/zhe', 'enc/ascii']);");
no_secret_bytes("$out\n$err", 'secretsmgr_get_secrets quotes nothing of it');
($ret, $out, $err) = run_sql('latin1db',
	"SELECT secretsmgr_get_secret('enc/ascii') ->> 'password';");
is($out, 'Ascii-Pw-081', 'LATIN1: an ASCII secret reads as jsonb') or diag($err);

# a UTF8 database holds the character
($ret, $out, $err) = run_sql('utf8db',
	"SELECT strpos(secretsmgr_get_secret('enc/zhe') ->> 'password', chr(1046)) = "
	  . (length($marker) + 1) . ";");
is($out, 't', 'UTF8: the escape is decoded') or diag($err);

# nothing of the secret in the server log (log_statement = all, debug1)
my $log = slurp_file($node->logfile, $offset);
no_secret_bytes($log, 'the server log holds nothing of the secret');
like($log, qr/22P05|cannot be read as jsonb/, 'the log does have the error');

$node->stop;
done_testing();
