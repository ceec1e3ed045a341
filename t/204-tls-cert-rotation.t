# Certificate rotation the way Kubernetes does it: the configured paths go
# through a "..data" symlink that is swapped atomically. New handshakes get the
# new certificate, a connection opened before keeps working on its session, and
# a broken new certificate is refused with a log line while the old one stays.
# SIGHUP (a config reload) re-reads the files too.
use strict;
use warnings;
use IPC::Open2;
use Test::More;
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my $be = start_backend();
my $bp = $be->port;
my ($port, $admin) = map { free_port() } 1 .. 2;

# secret/..v1/{tls.crt,tls.key}, secret/..data -> ..v1, secret/tls.crt -> ..data/tls.crt
my $sec = "$dir/secret";
mkdir $sec;
sub version {
	my ($name, $cert, $key) = @_;
	mkdir "$sec/$name";
	spew("$sec/$name/tls.crt", slurp($cert));
	spew("$sec/$name/tls.key", slurp($key));
}
sub point_to {
	my ($name) = @_;
	symlink($name, "$sec/..data.tmp") or die "symlink: $!";
	rename("$sec/..data.tmp", "$sec/..data") or die "rename: $!";
}
version('..v1', "$c/was.pem", "$c/was-key.pem");
point_to('..v1');
symlink('..data/tls.crt', "$sec/tls.crt") or die;
symlink('..data/tls.key', "$sec/tls.key") or die;

my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
listeners:
  - name: in
    address: 127.0.0.1:$port
    tls: { mode: STRICT, cert: $sec/tls.crt, key: $sec/tls.key, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
EOF

my @client = ('-cert', "$c/web.pem", '-key', "$c/web-key.pem", '-CAfile', "$c/root.pem");
sub served_cn {
	my $out = `openssl s_client -connect 127.0.0.1:$port @client </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null`;
	return $out =~ /CN\s*=\s*([\w-]+)/ ? $1 : '';
}

# A keep-alive TLS connection held open across the rotation.
my $pid = open2(my $from, my $to, 'sh', '-c', "exec openssl s_client -connect 127.0.0.1:$port -quiet @client 2>/dev/null");
binmode($from);
sub ask {
	my ($path) = @_;
	print $to "GET $path HTTP/1.1\r\nHost: x\r\n\r\n";
	$to->flush;
	my $buf = '';
	my $end = time + scale(5);
	# Until the whole response is in, the connection ends or the deadline:
	# the first answer waits for s_client's handshake, which under load takes
	# longer than one 0.2 s poll (a poll with nothing yet is no reason to stop).
	while (time < $end) {
		my $rin = '';
		vec($rin, fileno($from), 1) = 1;
		next unless select($rin, undef, undef, 0.2) > 0;
		my $n = sysread($from, $buf, 65536, length $buf);
		last unless $n;
		if ($buf =~ /\r\n\r\n/ && $buf =~ /content-length: (\d+)/i) {
			my $need = $1;
			my ($head) = $buf =~ /^(.*?\r\n\r\n)/s;
			last if length($buf) - length($head) >= $need;
		}
	}
	return $buf;
}

like(ask('/before'), qr{^HTTP/1\.1 200}, 'held connection works before the rotation');
is(served_cn(), 'was', 'v1 certificate served');

version('..v2', "$c/wild.pem", "$c/wild-key.pem");
point_to('..v2');
ok(wait_for(sub { $wm->stderr =~ /tls: listener in: certificate reloaded/ }, scale(5)), 'rotation noticed');
is(served_cn(), 'wild', 'new handshakes get the v2 certificate');
like(ask('/after'), qr{^HTTP/1\.1 200}, 'the connection opened before the rotation still works');

# A broken rotation: certificate and key do not match.
version('..v3', "$c/was.pem", "$c/web-key.pem");
point_to('..v3');
ok(wait_for(sub { $wm->stderr =~ /tls: listener in: certificate files changed but cannot be used, keeping the current ones: .*(does not match|mismatch)/ }, scale(5)),
	'a bad new certificate is logged');
is(served_cn(), 'wild', 'and the previous certificate stays in use');
like(ask('/still'), qr{^HTTP/1\.1 200}, 'held connection unaffected');

# SIGHUP re-reads every file with the config.
point_to('..v1');
$wm->hup;
ok(wait_for(sub { served_cn() eq 'was' }, scale(5)), 'SIGHUP / change back: v1 served again');
ok($wm->alive, 'wingman still running');

kill('TERM', $pid);
waitpid($pid, 0);
$wm->term;
done_testing();
