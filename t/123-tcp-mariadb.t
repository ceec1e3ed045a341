# A real MySQL-protocol server behind a TCP proxy listener (issue 16): Debian's
# MariaDB started in its own datadir on a free port, and the blog-system
# scenario's mysql DestinationRule circuit breaker as native config
# (connectionPool.tcp.maxConnections: 10 → max_connections: 10). The mariadb
# client creates, fills and reads a table through wingman; a 4 MB value comes
# back byte-exact; ten clients holding connections open (SELECT SLEEP) fill
# the breaker, so the eleventh is refused at once (ERROR 2013, UO,
# upstream_cx_overflow) and queries work again once they finish; the access
# log has a line per connection with bytes both ways.
use strict;
use warnings;
use Test::More;
use Wingman;

my ($mariadbd, $install) = ('/usr/sbin/mariadbd', '/usr/bin/mariadb-install-db');
plan skip_all => 'needs mariadb-server and mariadb-client (./bootstrap installs them)'
	unless -x $mariadbd && -x $install && have_prog('mariadb');

my $dir = tmpdir();
my $data = "$dir/mysql";
my ($db, $port, $admin) = map { free_port() } 1 .. 3;
my $log = "$dir/access.log";

system("$install --no-defaults --datadir=$data --user=root --auth-root-authentication-method=normal "
	. "--skip-test-db >$dir/install.log 2>&1") == 0 or BAIL_OUT('mariadb-install-db failed: ' . slurp("$dir/install.log"));
Wingman::spawn(cmd => [$mariadbd, '--no-defaults', "--datadir=$data", '--user=root', "--port=$db",
	'--bind-address=127.0.0.1', "--socket=$dir/mysql.sock", "--pid-file=$dir/mysql.pid", '--skip-grant-tables',
	'--skip-name-resolve', '--skip-log-bin', '--innodb-buffer-pool-size=16M', '--max-allowed-packet=16M',
	"--log-error=$dir/mysql.err"], name => 'mariadbd', stdout => "$dir/mysql.out", stderr => "$dir/mysql.out");
wait_for(sub { port_open($db) }, scale(30)) or BAIL_OUT('mariadbd did not start: ' . slurp("$dir/mysql.err"));

my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "%UPSTREAM_CLUSTER% %RESPONSE_FLAGS% rx=%BYTES_RECEIVED% tx=%BYTES_SENT%\\n" }
listeners:
  - name: mysql
    address: 127.0.0.1:$port
    protocol: tcp
    tcp_proxy: { cluster: mysql }
clusters:
  - name: mysql
    endpoints: [127.0.0.1:$db]
    connect_timeout: 3s
    connection_pool: { max_connections: 10 }
EOF

# Runs SQL through wingman with the mariadb client; returns (exit code, output).
sub sql {
	my ($q) = @_;
	my $out = `mariadb --protocol=TCP -h 127.0.0.1 -P $port -u root -N -B --max-allowed-packet=16M -e "$q" 2>&1`;
	return ($? >> 8, $out);
}

my ($rc, $out) = sql('SELECT VERSION()');
is($rc, 0, 'the mariadb client connects through the TCP listener');
like($out, qr/MariaDB/, '... and the server greets it (server-first protocol)');
($rc, $out) = sql('CREATE DATABASE blog; CREATE TABLE blog.posts (id INT PRIMARY KEY, title VARCHAR(64)); '
	. "INSERT INTO blog.posts VALUES (1, 'hello'), (2, 'wingman'); SELECT title FROM blog.posts ORDER BY id");
is($rc, 0, 'DDL, INSERT and SELECT through wingman');
is($out, "hello\nwingman\n", 'rows come back');
($rc, $out) = sql("SELECT MD5(REPEAT('wingman-', 524288)), LENGTH(REPEAT('wingman-', 524288))");
my ($md5, $len) = split /\s+/, $out;
($rc, $out) = sql("SELECT REPEAT('wingman-', 524288)");
chomp $out;
is(length $out, $len, 'a 4 MB value arrives whole');
is(md5_hex($out), $md5, '... byte-exact');

# Ten connections held open by SLEEP fill the breaker.
my @sleepers = map {
	Wingman::spawn(cmd => ['mariadb', '--protocol=TCP', '-h', '127.0.0.1', '-P', $port, '-u', 'root', '-e',
		'SELECT SLEEP(4)'], name => "sleeper-$_", stdout => '/dev/null', stderr => '/dev/null')
} 1 .. 10;
ok(wait_for(sub { ($wm->stats->{'cluster.mysql.upstream_cx_active'} // 0) == 10 }, scale(10)),
   'ten clients hold ten upstream connections');
($rc, $out) = sql('SELECT 1');
isnt($rc, 0, 'the eleventh client is refused by the circuit breaker');
like($out, qr/ERROR 2013|Lost connection/, '... as a lost connection during the handshake');
is($wm->stats->{'cluster.mysql.upstream_cx_overflow'}, 1, 'cluster.mysql.upstream_cx_overflow');
waitpid($_, 0) for @sleepers;
($rc, $out) = sql('SELECT 40 + 2');
is($rc, 0, 'once they finish, connections are accepted again');
is($out, "42\n", '... and answered');

my $st = $wm->stats;
is($st->{'cluster.mysql.upstream_cx_active'}, 0, 'no upstream connection left open');
cmp_ok($st->{'tcp.mysql.downstream_cx_total'}, '>=', 16, 'tcp.mysql.downstream_cx_total');
cmp_ok($st->{'tcp.mysql.downstream_cx_tx_bytes_total'}, '>', 4 * 1024 * 1024, 'bytes to clients counted');
wait_for(sub { scalar(() = $wm->access_log =~ /^mysql /mg) >= 16 }, scale(10));
my @lines = grep { /^mysql / } split /\n/, $wm->access_log;
is(scalar(grep { /^mysql UO rx=0 tx=0$/ } @lines), 1, 'access log: the refused client, flagged UO');
ok(grep({ /^mysql - rx=\d+ tx=(\d+)$/ && $1 > 4 * 1024 * 1024 } @lines), 'access log: the 4 MB result\'s bytes');

ok($wm->alive, 'wingman still running');
is($wm->term, 0, 'clean exit');
done_testing();
