# Hot restart: under keep-alive load (wrk) and a client opening a new
# connection per request, wingman A (2 workers) is replaced by B (3 workers,
# started with -x on A's hot_restart socket), then B by C (1 worker): not one
# request fails and no connection is refused; A and B drain and exit 0; the
# admin port answers from the newest process with server.hot_restart_epoch
# 1, then 2; the counters of all three add up in C; a SIGHUP reload still
# works on the sockets C took over. A take-over from a socket where no
# wingman answers, or a fresh start on a live one, fails clearly and binds
# nothing.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP ();
use Wingman;

plan skip_all => 'wrk not installed (apt-get install wrk)' unless have_prog('wrk');

my $ng = start_nginx(q{ location / { return 200 "ok\n"; } });
my $np = $ng->port;
my ($port, $admin) = map { free_port() } 1 .. 2;
my $sock = tmpdir() . '/hot-restart.sock';

sub conf {
	my ($workers, $gen) = @_;
	return web_conf(<<"EOF", port => $port, admin => $admin, workers => $workers,
    routes:
      - match: { prefix: / }
        route: { cluster: web }
        headers: { response: { set: { x-generation: "$gen" } } }
clusters:
  - { name: web, endpoints: [127.0.0.1:$np] }
EOF
		top => "hot_restart: { socket: $sock }\ndrain_timeout: 5s\n");
}

sub take_over {
	my ($old, $workers, $gen) = @_;
	my $new = start_wingman(conf($workers, $gen), args => ['-x', $sock]);
	ok(wait_for(sub { $new->stderr =~ /took over from pid (\d+), which drains/ }, scale(10)),
		"$gen took over") or diag($new->stderr);
	my $st = $old->wait_exit(scale(10));
	is(defined $st ? $st : -1, 0, "the process before $gen drained and exited 0") or diag($old->stderr);
	like($old->stderr, qr/draining \(hot restart\)/, "it drained for the hot restart");
	return $new;
}

my $a = start_wingman(conf(2, 'a'));
ok(-S $sock, 'A listens on its hot_restart socket');
is(http_get($port, '/')->{headers}{'x-generation'}, 'a', 'A serves');
is($a->stat('server.hot_restart_epoch'), 0, 'A: server.hot_restart_epoch 0');
my $pre = 1;

my $load = start_load($port, secs => scale(8), wrk => ['-t2', '-c20']);
sleep(scale(2));
my $b = take_over($a, 3, 'b');
is($b->stat('server.hot_restart_epoch'), 1, 'the admin port answers from B: server.hot_restart_epoch 1');
is($b->stat('server.hot_restart_generation'), 1, 'server.hot_restart_generation 1');
sleep(scale(2));
my $c = take_over($b, 1, 'c');
my ($w, $fresh) = $load->finish;

diag("wrk: " . ($w->{requests} // '?') . " requests, " . ($w->{rps} // '?') . " rps over two upgrades");
ok(($w->{requests} // 0) > 1000, 'wrk completed requests') or diag($w->{raw});
is($w->{non2xx}, 0, 'wrk: zero non-2xx responses') or diag($w->{raw});
is($w->{connect} + $w->{read} + $w->{write} + $w->{timeout}, 0, 'wrk: zero socket errors') or diag($w->{raw});
ok($fresh->{n} > 50, "a new connection per request: $fresh->{n} requests");
is($fresh->{refused}, 0, 'a new connection per request: none refused');
is($fresh->{bad}, 0, 'a new connection per request: none failed');

is(http_get($port, '/')->{headers}{'x-generation'}, 'c', 'C serves');
my $info = JSON::PP::decode_json(scalar $c->admin('/server_info'));
is($info->{command_line_options}{restart_epoch}, 2, '/server_info: restart_epoch 2');
is($info->{command_line_options}{concurrency}, 1, "/server_info is C's (1 worker)");
is($info->{hot_restart_version}, 'handoff.1', '/server_info: hot_restart_version');
ok(!$info->{command_line_options}{disable_hot_restart}, '/server_info: hot restart enabled');
is($c->stat('server.hot_restart_epoch'), 2, 'server.hot_restart_epoch 2');

# Every request A, B and C answered is counted in C: the drained ones hand
# on their counters when they exit. wrk's requests cut off when it stopped
# were answered but not counted by wrk (20 connections at most).
my $served = $w->{requests} + $fresh->{n} + $pre + 1;
my $total = $c->stat('http.web.downstream_rq_total');
ok($total >= $served && $total <= $served + 20,
	"http.web.downstream_rq_total $total carries all three processes' requests ($served seen by clients)");
is($c->stat('http.web.downstream_rq_5xx'), 0, 'no 5xx counted');
ok($c->stat('cluster.web.upstream_rq_total') >= $served, 'cluster counters carried too');
like($b->stderr, qr/pid $a->{pid} drained; its counters are this process's now/, "B got A's drain counters");

# A reload on the sockets C took over.
$c->write_conf(conf(1, 'c2'));
$c->hup;
ok(wait_for(sub { ($c->stat('server.config_reload') // 0) >= 1 }, scale(5)), 'SIGHUP reload after the upgrade');
is(http_get($port, '/')->{headers}{'x-generation'}, 'c2', 'the reloaded config serves on the same port');

# Failures: nothing is bound, the running process is untouched.
my $other = free_port();
my $lone = web_conf("    routes: [{ match: { prefix: / }, route: { cluster: web } }]\n"
	. "clusters: [{ name: web, endpoints: [127.0.0.1:$np] }]\n",
	port => $other, admin => free_port(), top => "hot_restart: { socket: $sock }\n");
my ($rc, $msg) = wingman_run($lone);
is($rc, 1, 'a fresh start on the socket of a live wingman exits 1');
like($msg, qr/hot_restart socket \Q$sock\E: a wingman serves there; start with -x \Q$sock\E/,
	'and says to take over with -x');
ok(!port_open($other), 'it bound nothing');

my $nowhere = tmpdir() . '/nobody.sock';
($rc, $msg) = wingman_run($lone =~ s/\Q$sock\E/$nowhere/r, args => ['-x', $nowhere]);
is($rc, 1, '-x on a socket nobody serves exits 1');
like($msg, qr/cannot take over from \Q$nowhere\E: No such file or directory/, 'naming the socket and why');
ok(!port_open($other), 'it bound nothing');

spew($nowhere, "not a socket\n");
($rc, $msg) = wingman_run($lone =~ s/\Q$sock\E/$nowhere/r);
is($rc, 1, 'a hot_restart socket path that is a file exits 1');
like($msg, qr/hot_restart socket \Q$nowhere\E: the file exists and is not a socket/, 'and says so');

# A successor that fails after it got the sockets (its admin port is taken)
# leaves the running process serving: it drains only once told to.
($rc, $msg) = wingman_run(web_conf("    routes: [{ match: { prefix: / }, route: { cluster: web } }]\n"
	. "clusters: [{ name: web, endpoints: [127.0.0.1:$np] }]\n",
	port => $port, admin => $np, top => "hot_restart: { socket: $sock }\n"), args => ['-x', $sock]);
is($rc, 1, 'a successor that cannot bind its admin port exits 1');
like($msg, qr/handed over \d+ sockets.*admin: cannot listen on 127\.0\.0\.1:$np/s, 'after the handshake');
ok(wait_for(sub { $c->stderr =~ /went away before taking over; this process serves on/ }, scale(5)),
	'C says the take-over was abandoned');
ok(-S $sock, 'C keeps its hot_restart socket');
is(http_get($port, '/')->{headers}{'x-generation'}, 'c2', 'C still serves');
is($c->stat('server.hot_restart_epoch'), 2, 'C still answers the admin port');

my ($crc, $cout) = wingman_check("hot_restart: { socket: '' }\n" . $lone =~ s/^hot_restart:.*\n//mr);
is($crc, 1, 'an empty hot_restart socket is a config error');
like($cout, qr/:1:\d+: hot_restart socket must not be empty/, 'with its position');

my $st = $c->term(scale(10));
is(defined $st ? $st : -1, 0, 'C exits 0 on SIGTERM');
ok(!-e $sock, 'and removes its hot_restart socket');
done_testing;
