# SIGHUP reload: routes swap; a kept listener keeps its socket and serves
# throughout; an added listener appears, a removed one refuses; a broken file
# keeps the old config, logs FILE:LINE:COL and counts server.config_reload_failed;
# a good one counts server.config_reload.
use strict;
use warnings;
use Test::More;
use Wingman;

my ($ng, $pa, $pb) = start_nginx_servers('A', 'B');
ok(wait_for(sub { port_open($pb) }), 'backends up');

my ($p1, $p2, $p3) = (free_port(), free_port(), free_port());
my $admin = free_port();

sub conf {
	my (%o) = @_;
	my $y = "workers: 2\nadmin: { address: 127.0.0.1:$admin }\naccess_log: { path: off }\nlisteners:\n";
	for my $l (@{ $o{listeners} }) {
		my ($name, $port, $cluster) = @$l;
		$y .= "  - name: $name\n    address: 127.0.0.1:$port\n    routes:\n"
			. "      - { name: r-$name, match: { prefix: / }, route: { cluster: $cluster } }\n";
	}
	$y .= "clusters:\n  - { name: a, endpoints: [127.0.0.1:$pa] }\n  - { name: b, endpoints: [127.0.0.1:$pb] }\n";
	return $y;
}

my $wm = start_wingman(conf(listeners => [['one', $p1, 'a'], ['two', $p2, 'a']]));
is(http_get($p1, '/')->{body}, 'A', 'listener one → a');
is(http_get($p2, '/')->{body}, 'A', 'listener two → a');
is($wm->stat('server.config_reload'), 0, 'no reload yet');

# A client connection opened before the reload on a kept listener.
my $early = connect_port($p1);
send_bytes($early, "GET /early1 HTTP/1.1\r\nHost: x\r\n\r\n");
is(read_response($early)->{body}, 'A', 'keep-alive connection before reload');

# Reload: one → b, two removed, three added.
$wm->write_conf(conf(listeners => [['one', $p1, 'b'], ['three', $p3, 'a']]));
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload') == 1 }, scale(5)), 'server.config_reload is 1');
is($wm->stat('server.config_reload_failed'), 0, 'server.config_reload_failed is 0');
ok(wait_for(sub { http_get($p1, '/')->{body} eq 'B' }, scale(5)), 'routes swapped: listener one → b');
ok(wait_for(sub { port_open($p3) }, scale(5)), 'added listener three accepts');
is(http_get($p3, '/')->{body}, 'A', 'listener three → a');
ok(wait_for(sub { !port_open($p2) }, scale(5)), 'removed listener two refuses connections');

send_bytes($early, "GET /early2 HTTP/1.1\r\nHost: x\r\n\r\n");
my $r = read_response($early);
ok($r && $r->{status} == 200, 'a connection from before the reload is still served');
close $early;

my $d11 = config_dump($wm->admin_port);
ok(dump_resources($d11)->{listeners}{three}, '/config_dump shows the new listener');
is(dump_of($d11, 'ListenersConfigDump')->{version_info}, '2', '  at version_info 2, the second generation');

# A kept listener serves continuously across reloads: a client loop in a child
# process counts failures while we reload five times.
my $fails = tmpdir() . '/011-fails';
my $kid = fork // die "fork: $!";
if ($kid == 0) {
	my ($ok, $bad) = (0, 0);
	my $end = time + scale(4);
	while (time < $end) {
		my $r = eval { http_get($p1, '/loop', timeout => 3) };
		($r && $r->{status} == 200) ? $ok++ : $bad++;
	}
	spew($fails, "$ok $bad");
	POSIX::_exit(0);
}
for my $i (2 .. 6) {
	sleep 0.4;
	$wm->write_conf(conf(listeners => [['one', $p1, $i % 2 ? 'a' : 'b'], ['three', $p3, 'a']]));
	$wm->hup;
	wait_for(sub { $wm->stat('server.config_reload') == $i }, scale(5));
}
waitpid($kid, 0);
my ($ok, $bad) = split / /, slurp($fails);
ok($ok > 10, "client loop made requests during reloads ($ok)");
is($bad, 0, 'no failed request on the kept listener during reloads');
is($wm->stat('server.config_reload'), 6, 'six reloads counted');

# A broken file: the old config stays.
my $before = http_get($p1, '/')->{body};
my $broken = conf(listeners => [['one', $p1, 'a']]);
$broken =~ s/^access_log: .*$/access_log: { path: off, bogus_key: 1 }/m;
my @lines = split /\n/, $broken;
my ($bad_line) = grep { $lines[$_ - 1] =~ /bogus_key/ } 1 .. @lines;
$wm->write_conf($broken);
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload_failed') == 1 }, scale(5)), 'server.config_reload_failed is 1');
is($wm->stat('server.config_reload'), 6, 'server.config_reload unchanged');
my $conf = $wm->conf;
ok(wait_for(sub { $wm->stderr =~ /^.*\Q$conf\E:$bad_line:\d+: .*bogus_key/m }, scale(3)),
	"the error is logged as FILE:$bad_line:COL") or diag($wm->stderr);
is(http_get($p1, '/')->{body}, $before, 'old routes still served');
ok(port_open($p3), 'old listeners still there');

# Broken YAML syntax too.
$wm->write_conf("listeners:\n  - name: [unclosed\n");
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload_failed') == 2 }, scale(5)), 'syntax error: reload_failed is 2');
ok(wait_for(sub { $wm->stderr =~ /\Q$conf\E:\d+:\d+: /m }, scale(3)), 'syntax error logged with location');
is(http_get($p1, '/')->{body}, $before, 'still serving the old config');

# And a good file again.
$wm->write_conf(conf(listeners => [['one', $p1, 'a'], ['two', $p2, 'b']]));
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload') == 7 }, scale(5)), 'good reload after failures');
is(http_get($p1, '/')->{body}, 'A', 'listener one → a again');
ok(wait_for(sub { port_open($p2) }, scale(5)), 'listener two back');
is(http_get($p2, '/')->{body}, 'B', 'listener two → b');
ok(wait_for(sub { !port_open($p3) }, scale(5)), 'listener three gone');

ok($wm->alive, 'wingman still running');
is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');
done_testing;
