#!/usr/bin/perl
# Side-by-side A/B of wingman binaries, for changes that must not cost
# anything (a refactor) or claim to save something:
#
#   perl -It/lib t/bench-ab.pl BIN_A BIN_B [BIN_C ...]
#
# One nginx backend (1 worker); in front of it each binary runs the same
# config (1 worker, access log off) with an HTTP/1.1 and an h2c listener. Each
# round drives every binary in turn (the order rotates per round), wrk -t2
# -c64 keep-alive and h2load -c 32 -m 16, so the machine's drift hits all
# alike. Prints, per binary, the median and spread (min-max) over rounds of
# CPU µs per request (user + system of the wingman process divided by the
# requests it served) and requests/s, then the median of per-round CPU ratios
# against A; last, syscalls per request under `strace -c -f` for a fixed
# h2load --h1 run of 20,000 requests (strace slows it; the count is exact).
#
# Environment: BENCH_ROUNDS (default 7), BENCH_DURATION (seconds, 3).
use strict;
use warnings;
use Time::HiRes qw(sleep);
use Wingman;
use WingmanBench;

my @bins = @ARGV;
die "usage: $0 BIN_A BIN_B [BIN...]\n" unless @bins >= 2;
-x $_ or die "bench-ab: $_ is not an executable\n" for @bins;
for my $p (qw(wrk h2load)) {
	die "bench-ab: $p not found (./bootstrap deps installs it)\n" unless have_prog($p);
}
my $rounds = $ENV{BENCH_ROUNDS} // 7;
my $duration = $ENV{BENCH_DURATION} // 3;

my $body = 'hello from the backend';
my $backend = start_nginx(qq{
	access_log off;
	location / { return 200 "$body"; }
});
my $bp = $backend->port;

my @wm;
for my $i (0 .. $#bins) {
	my ($h1, $h2) = (free_port(), free_port());
	my $proc = start_wingman(<<"EOF", bin => $bins[$i]);
workers: 1
access_log: { path: off }
listeners:
  - { name: h1, address: 127.0.0.1:$h1, routes: [{ match: { prefix: / }, route: { cluster: backend } }] }
  - { name: h2, address: 127.0.0.1:$h2, protocol: http2, routes: [{ match: { prefix: / }, route: { cluster: backend } }] }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$bp] }
EOF
	my $r = http_get($h1, '/');
	die "bench-ab: $bins[$i] answered $r->{status}\n" unless $r->{status} == 200 && $r->{body} eq $body;
	push @wm, { name => chr(ord('A') + $i), bin => $bins[$i], h1 => $h1, h2 => $h2, proc => $proc };
}

# h2load against an h2c listener; the wingman's CPU is charged to the requests.
sub h2drive {
	my ($w) = @_;
	my $pid = $w->{proc}->pid;
	my $cpu0 = cpu_s($pid);
	my $out = `h2load -c 32 -m 16 -D $duration http://127.0.0.1:$w->{h2}/ 2>&1`;
	my ($rps) = $out =~ /finished in [\d.]+s, ([\d.]+) req\/s/;
	my ($ok) = $out =~ /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/;
	die "bench-ab: h2load against $w->{name} failed:\n$out\n" unless $rps && $ok;
	return { rps => $rps, cpu_us_per_req => (cpu_s($pid) - $cpu0) * 1e6 / $ok };
}

for my $round (0 .. $rounds - 1) {
	print STDERR "round ", $round + 1, "/$rounds\n";
	for my $k (0 .. $#wm) {
		my $w = $wm[($k + $round) % @wm];
		$w->{h1runs}[$round] = drive("$w->{name} h1", "http://127.0.0.1:$w->{h1}/", conns => 64,
			duration => $duration, cpu_pid => $w->{proc}->pid);
		$w->{h2runs}[$round] = h2drive($w);
	}
}

# Syscalls per request: strace counts every call of the process while a fixed
# HTTP/1.1 run goes through it.
sub syscalls_per_request {
	my ($w) = @_;
	return undef unless have_prog('strace');
	my $log = tmpdir() . "/strace-$w->{name}.txt";
	my $st = Wingman::spawn(cmd => ['strace', '-c', '-f', '-o', $log, '-p', $w->{proc}->pid], name => 'strace',
		stderr => tmpdir() . '/strace.err');
	sleep 1;
	my $out = `h2load --h1 -n 20000 -c 32 http://127.0.0.1:$w->{h1}/ 2>&1`;
	kill 'INT', $st;
	waitpid($st, 0);
	my ($ok) = $out =~ /(\d+) succeeded/;
	my ($calls) = (slurp($log) // '') =~ /^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$/m;
	return $ok && $calls ? $calls / $ok : undef;
}

sub spread {
	my @v = sort { $a <=> $b } @_;
	return sprintf('%.1f (%.1f-%.1f)', median(@v), $v[0], $v[-1]);
}

printf "\n%d rounds of wrk -t2 -c64 -d%ds and h2load -c 32 -m 16 -D %d, order rotating; median (min-max)\n\n",
	$rounds, $duration, $duration;
print "| binary | HTTP/1.1 CPU µs/req | HTTP/1.1 req/s | h2c CPU µs/req | h2c req/s | CPU ratio to A, h1 / h2c | syscalls/req (h1) |\n";
print "|---|---:|---:|---:|---:|---:|---:|\n";
my $base = $wm[0];
for my $w (@wm) {
	my @ratio1 = map { $w->{h1runs}[$_]{cpu_us_per_req} / $base->{h1runs}[$_]{cpu_us_per_req} } 0 .. $rounds - 1;
	my @ratio2 = map { $w->{h2runs}[$_]{cpu_us_per_req} / $base->{h2runs}[$_]{cpu_us_per_req} } 0 .. $rounds - 1;
	my $sc = syscalls_per_request($w);
	printf "| %s: %s | %s | %.0f | %s | %.0f | %.3f / %.3f | %s |\n", $w->{name}, $w->{bin},
		spread(map { $_->{cpu_us_per_req} } @{ $w->{h1runs} }), median(map { $_->{rps} } @{ $w->{h1runs} }),
		spread(map { $_->{cpu_us_per_req} } @{ $w->{h2runs} }), median(map { $_->{rps} } @{ $w->{h2runs} }),
		median(@ratio1), median(@ratio2), defined $sc ? sprintf('%.2f', $sc) : '-';
}
