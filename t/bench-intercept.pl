# eBPF vs iptables interception, in one run: the seed's pods (t/lib/Pod.pm)
# with wingman sidecars, first intercepted by `wingman intercept`, then by
# istio-init's iptables rules; wrk in the web pod calls was-service:8080
# (web sidecar → was sidecar → app), with keep-alive and with a new
# connection per request (connect + request). Part of `make bench`; needs root.
use strict;
use warnings;
use Test::More;
use Wingman;
use Pod;
use PodSeed;

my $why = Pod::unavailable();
if ($why) {
	print "interception benchmark skipped: $why\n";
	exit 0;
}
my $dur = $ENV{BENCH_INTERCEPT_SECONDS} // 3;

sub wrk {
	my ($pod, @args) = @_;
	my ($rc, $out) = $pod->run(cmd => ['wrk', '-t1', '-c8', "-d${dur}s", '--latency', @args,
		"http://$PodSeed::VIP:8080/bench"]);
	my %r;
	$r{rps} = $1 if $out =~ /Requests\/sec:\s+([\d.]+)/;
	for my $p (50, 90, 99) {
		$r{"p$p"} = $1 * ($2 eq 'us' ? 0.001 : $2 eq 's' ? 1000 : 1)
			if $out =~ /^\s+$p(?:\.000)?%\s+([\d.]+)(us|ms|s)\b/m;
	}
	$r{errors} = $1 if $out =~ /Non-2xx or 3xx responses: (\d+)/;
	$r{errors} = ($r{errors} // 0) + $1 + $2 + $3 + $4
		if $out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
	diag($out) unless $r{rps};
	return \%r;
}

my %res;
for my $mode (qw(ebpf iptables)) {
	my ($net, $web, $was, $intr) = PodSeed::setup($mode);
	my ($rc, $out) = $web->curl("http://$PodSeed::VIP:8080/warm");
	die "$mode: web → was-service does not work: $out" unless $out =~ /^app host=/;
	$res{$mode}{ka} = wrk($web);
	$res{$mode}{cc} = wrk($web, '-H', 'Connection: close');
	$net->cleanup;
}
done_testing;

my $f = sub { defined $_[0] ? sprintf('%.2f', $_[0]) : '-' };
print "\nweb → was-service:8080 through both sidecars, wrk -t1 -c8 -d${dur}s, load average at start: "
	. (split ' ', Wingman::slurp('/proc/loadavg'))[0] . "\n\n";
print "| interception | keep-alive req/s | p50 ms | p99 ms | connect+request req/s | p50 ms | p90 ms | p99 ms | errors |\n";
print "|---|---|---|---|---|---|---|---|---|\n";
for my $mode (qw(ebpf iptables)) {
	my ($ka, $cc) = @{ $res{$mode} }{qw(ka cc)};
	printf "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", $mode, $f->($ka->{rps}), $f->($ka->{p50}),
		$f->($ka->{p99}), $f->($cc->{rps}), $f->($cc->{p50}), $f->($cc->{p90}), $f->($cc->{p99}),
		($ka->{errors} // 0) + ($cc->{errors} // 0);
}
my ($e, $i) = ($res{ebpf}{cc}, $res{iptables}{cc});
printf "\neBPF / iptables, connect+request: %.2f x req/s, p99 %.2f x\n", $e->{rps} / $i->{rps}, $e->{p99} / $i->{p99}
	if $e->{rps} && $i->{rps} && $e->{p99} && $i->{p99};
