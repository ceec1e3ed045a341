# SNI routing without terminating TLS (issue 16; Envoy's tls_inspector with
# filter_chain_match.server_names): openssl s_server backends, each with its
# own certificate, behind a protocol: tls_passthrough listener; openssl
# s_client -servername sees the certificate of the backend its name picks
# (exact, wildcard, exact beating a wildcard, case-insensitive, the default
# chain for an unknown name and for no SNI), so the handshake went through
# untouched. A listener without a default closes what no chain takes
# (no_filter_chain_match), garbage (tls_not_found) and an oversized hello
# (client_hello_too_large). A ClientHello split across reads by a relay still
# routes. An HTTP listener with tls mixes both: a name a chain lists passes
# through, the others are terminated and served. Access log, tls_inspector.*
# and tcp.<stat_prefix>.* stats.
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use Test::More;
use Wingman;

my $certs = test_certs();
my $dir = tmpdir();
my ($pa, $pb, $pw, $pd, $sni, $strict, $mixed, $relay, $admin) = map { free_port() } 1 .. 9;
my $log = "$dir/access.log";

sub s_server {
	my ($port, $name) = @_;
	Wingman::spawn(cmd => ['openssl', 's_server', '-accept', "127.0.0.1:$port", '-cert', "$certs/$name.pem",
		'-key', "$certs/$name-key.pem", '-www', '-quiet'], name => "s_server-$name",
		stdout => '/dev/null', stderr => '/dev/null');
	wait_for(sub { port_open($port) }, scale(10)) or die "s_server $name on $port did not start\n";
}
s_server($pa, 'web');
s_server($pb, 'was');
s_server($pw, 'wild');
s_server($pd, 'intruder');

my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "sni=%REQUESTED_SERVER_NAME% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% rx=%BYTES_RECEIVED% tx=%BYTES_SENT% %RESPONSE_CODE%\\n" }
listeners:
  - name: sni
    address: 127.0.0.1:$sni
    protocol: tls_passthrough
    filter_chains:
      - filter_chain_match: { server_names: [a.test, alias.test] }
        tcp_proxy: { cluster: a, stat_prefix: a }
      - filter_chain_match: { server_names: ["*.wild.test"] }
        tcp_proxy: { cluster: wild, stat_prefix: wild }
      - filter_chain_match: { server_names: [x.wild.test] }
        tcp_proxy: { cluster: b }
    default_filter_chain:
      tcp_proxy: { cluster: d, stat_prefix: fallback }
  - name: strict
    address: 127.0.0.1:$strict
    protocol: tls_passthrough
    filter_chains:
      - filter_chain_match: { server_names: [a.test] }
        tcp_proxy: { cluster: a }
  - name: mixed
    address: 127.0.0.1:$mixed
    tls: { mode: SIMPLE, cert: $certs/wild.pem, key: $certs/wild-key.pem }
    filter_chains:
      - filter_chain_match: { server_names: [db.example.com] }
        tcp_proxy: { cluster: b, stat_prefix: db }
    routes: [{ match: { prefix: / }, direct_response: { status: 200, body: "terminated here" } }]
clusters:
  - { name: a, endpoints: [127.0.0.1:$pa] }
  - { name: b, endpoints: [127.0.0.1:$pb] }
  - { name: wild, endpoints: [127.0.0.1:$pw] }
  - { name: d, endpoints: [127.0.0.1:$pd] }
EOF

# The CN of the certificate a TLS client sees through $port, asking for $name
# (undef: no SNI); '' when the handshake failed.
sub peer_cn {
	my ($port, $name) = @_;
	my $sn = defined $name ? "-servername $name" : '-noservername';
	my $subj = `openssl s_client -connect 127.0.0.1:$port $sn </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null`;
	return $subj =~ /CN\s*=\s*([\w-]+)/ ? $1 : '';
}

is(peer_cn($sni, 'a.test'), 'web', 'exact name: the backend of its chain answers the handshake');
is(peer_cn($sni, 'alias.test'), 'web', 'second name of the chain');
is(peer_cn($sni, 'A.Test'), 'web', 'server names match case-insensitively');
is(peer_cn($sni, 'foo.wild.test'), 'wild', 'wildcard chain');
is(peer_cn($sni, 'x.wild.test'), 'was', 'an exact name beats a wildcard listed before it');
is(peer_cn($sni, 'other.test'), 'intruder', 'unknown name: default_filter_chain');
is(peer_cn($sni, undef), 'intruder', 'no SNI: default_filter_chain');

# A whole exchange through the passthrough: s_server -www answers a request.
my $page = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -connect 127.0.0.1:$sni -servername a.test 2>/dev/null`;
like($page, qr/HTTP\/1\.0 200 ok/i, 'request and response pass through the encrypted stream');

# No chain, no default: closed and counted.
is(peer_cn($strict, 'b.test'), '', 'strict listener: an unlisted name gets no handshake');
is(peer_cn($strict, 'a.test'), 'web', 'strict listener: its listed name routes');

sub closed_after {
	my ($port, $bytes) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
	syswrite($s, $bytes);
	return 0 unless IO::Select->new($s)->can_read(scale(5));
	my $n = sysread($s, my $buf, 100);
	return defined $n && $n == 0 || !defined $n;
}
ok(closed_after($strict, "hello, not TLS\r\n"), 'garbage on a listener without a default: closed at once');
my $huge = "\x16\x03\x01\x40\x00" . "\x01\x01\x00\x01" . ("\0" x 16380);
ok(closed_after($strict, $huge), 'a ClientHello announcing more than 64 KiB: closed');

# A ClientHello that arrives in three pieces: a relay cuts the client's first
# flight after 7 and 107 bytes, pausing between, then pumps both ways.
my $rpid = fork // die "fork: $!";
if ($rpid == 0) {
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $relay, Listen => 4, ReuseAddr => 1)
		or die "relay: $!";
	while (my $c = $l->accept) {
		my $first = '';
		while (length $first < 10) {
			last unless sysread($c, $first, 65536, length $first);
		}
		next if length $first < 10;	# port_open()'s probe
		my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sni) or die "relay up: $!";
		for my $cut ([0, 7], [7, 100], [107, length($first)]) {
			syswrite($u, substr($first, $cut->[0], $cut->[1])) if $cut->[0] < length $first;
			sleep 0.2;
		}
		my $sel = IO::Select->new($c, $u);
		PUMP: while (1) {
			for my $r ($sel->can_read(10)) {
				my $n = sysread($r, my $d, 65536);
				last PUMP unless $n;
				syswrite($r == $c ? $u : $c, $d);
			}
		}
		close $u;
		close $c;
	}
	exit 0;
}
Wingman::_register($rpid, 0, 'relay');
wait_for(sub { port_open($relay) }, scale(5));
is(peer_cn($relay, 'a.test'), 'web', 'a ClientHello split across three reads still routes by its name');

# The mixed listener: listed names pass through, the rest are terminated.
is(peer_cn($mixed, 'db.example.com'), 'was', 'mixed listener: a listed name passes through');
is(peer_cn($mixed, 'shop.example.com'), 'wild', 'mixed listener: other names get its own certificate');
my $body = `curl -sk --resolve shop.example.com:$mixed:127.0.0.1 https://shop.example.com:$mixed/`;
is($body, 'terminated here', 'mixed listener: terminated names are served as HTTP');

wait_for(sub { scalar(() = $wm->access_log =~ /^sni=/mg) >= 13 }, scale(10));
my $al = $wm->access_log;
like($al, qr/^sni=a\.test a 127\.0\.0\.1:$pa rx=[1-9]\d* tx=[1-9]\d* 0$/m,
     'access log: %REQUESTED_SERVER_NAME%, cluster, host and bytes of a passthrough connection');
like($al, qr/^sni=other\.test d 127\.0\.0\.1:$pd /m, 'access log: the default chain');
like($al, qr/^sni=db\.example\.com b 127\.0\.0\.1:$pb /m, 'access log: the mixed listener\'s passthrough');
like($al, qr/^sni=shop\.example\.com - - .* 200$/m, 'access log: the terminated request has the SNI too');

my $st = $wm->stats;
cmp_ok($st->{'tls_inspector.tls_found'} // 0, '>=', 14, 'tls_inspector.tls_found');
cmp_ok($st->{'tls_inspector.sni_found'} // 0, '>=', 13, 'tls_inspector.sni_found');
cmp_ok($st->{'tls_inspector.sni_not_found'} // 0, '>=', 1, 'tls_inspector.sni_not_found');
cmp_ok($st->{'tls_inspector.alpn_not_found'} // 0, '>=', 1, 'tls_inspector.alpn_not_found (s_client offers none)');
is($st->{'tls_inspector.tls_not_found'}, 1, 'tls_inspector.tls_not_found: the garbage');
is($st->{'tls_inspector.client_hello_too_large'}, 1, 'tls_inspector.client_hello_too_large');
is($st->{"listener.127.0.0.1_$strict.no_filter_chain_match"}, 2, 'no_filter_chain_match: unlisted name and garbage');
cmp_ok($st->{'tcp.a.downstream_cx_total'} // 0, '>=', 5, 'tcp.a.* counts its chain');
is($st->{'tcp.fallback.downstream_cx_total'}, 2, 'tcp.fallback.* counts the default chain');
is($st->{'tcp.db.downstream_cx_total'}, 1, 'tcp.db.*: the mixed listener\'s chain');
cmp_ok($st->{"listener.127.0.0.1_$sni.downstream_cx_total"} // 0, '>=', 9, 'listener stats count passthrough connections');
ok(!grep(/^http\.sni\./, keys %$st), 'a tls_passthrough listener has no http.* stats');

# /config_dump: Envoy's shape, a chain per server_names, the tls_inspector.
my $dl = dump_resources(config_dump($admin))->{listeners};
is_deeply([map { $_->{filter_chain_match}{server_names} } @{ $dl->{sni}{filter_chains} }],
	  [['a.test', 'alias.test'], ['*.wild.test'], ['x.wild.test']], '/config_dump: the filter chains\' server_names');
is($dl->{sni}{filter_chains}[1]{filters}[0]{typed_config}{cluster}, 'wild', '... each with its tcp_proxy');
is($dl->{sni}{default_filter_chain}{filters}[0]{typed_config}{stat_prefix}, 'fallback', '... and the default chain');
is($dl->{sni}{listener_filters}[0]{name}, 'envoy.filters.listener.tls_inspector', '... read by the tls_inspector');
is(scalar @{ $dl->{mixed}{filter_chains} }, 2, 'the mixed listener: its passthrough chain and its HTTP chain');

# -t says what is wrong with a chain, at its line.
my ($rc, $out) = wingman_check(<<"EOF");
listeners:
  - name: s
    address: 127.0.0.1:$sni
    protocol: tls_passthrough
    filter_chains:
      - filter_chain_match: { server_names: [a.test] }
        tcp_proxy: { cluster: nope }
clusters: [{ name: a, endpoints: [127.0.0.1:$pa] }]
EOF
is($rc, 1, '-t refuses a chain with an unknown cluster');
like($out, qr/:7:31: unknown cluster "nope"/, '... at its line and column');

ok($wm->alive, 'wingman still running');
is($wm->term, 0, 'clean exit');
done_testing();
