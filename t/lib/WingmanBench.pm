# Measuring helpers shared by the benchmarks (t/bench.pl, t/bench-ab.pl):
# memory and CPU of a process from /proc, and a wrk run that samples both.
package WingmanBench;
use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(sleep);
use Wingman;
use Exporter 'import';
our @EXPORT = qw(rss_kb cpu_s child_pid drive median);

# A memory line of /proc/PID/status in kB (VmRSS unless another is named).
sub rss_kb {
	my ($pid, $what) = @_;
	$what //= 'VmRSS';
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	while (<$fh>) {
		return $1 if /^\Q$what\E:\s+(\d+) kB/;
	}
	return undef;
}

# CPU seconds (user + system, all threads) used so far by $pid.
sub cpu_s {
	my ($pid) = @_;
	my $stat = Wingman::slurp("/proc/$pid/stat") // return 0;
	$stat =~ s/^.*\)\s+//s;	# past "pid (comm)"
	my @f = split ' ', $stat;
	return ($f[11] + $f[12]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

# The first child of $pid (nginx's worker process).
sub child_pid {
	my ($pid) = @_;
	my $kids = Wingman::slurp("/proc/$pid/task/$pid/children") // '';
	my ($kid) = $kids =~ /(\d+)/;
	return $kid;
}

sub median {
	my @v = sort { $a <=> $b } grep { defined } @_;
	return @v ? $v[$#v / 2] : undef;
}

# Runs wrk -t2 -c$o{conns} -d$o{duration}s against $url; while it runs,
# samples the RSS of $o{rss_pid} and charges $o{cpu_pid}'s CPU time to the
# requests served. Returns wrk_parse's hash plus peak_rss_kb and cpu_us_per_req.
sub drive {
	my ($name, $url, %o) = @_;
	my $cpu0 = $o{cpu_pid} ? cpu_s($o{cpu_pid}) : 0;
	my $out = Wingman::tmpdir() . "/wrk-$name.out";
	unlink $out;
	my $w = Wingman::spawn(cmd => ['wrk', '-t2', "-c$o{conns}", "-d$o{duration}s", '--latency', $url],
		stdout => $out, stderr => $out, name => "wrk-$name");
	my $peak = 0;
	while (waitpid($w, POSIX::WNOHANG()) != $w) {
		if ($o{rss_pid}) {
			my $r = rss_kb($o{rss_pid}) // 0;
			$peak = $r if $r > $peak;
		}
		sleep 0.1;
	}
	Wingman::stop_process($w);
	my $res = Wingman::wrk_parse(Wingman::slurp($out));
	die "bench: wrk against $name failed:\n$res->{raw}\n" unless $res->{rps};
	$res->{peak_rss_kb} = $peak;
	$res->{cpu_us_per_req} = $o{cpu_pid} && $res->{requests} ?
		(cpu_s($o{cpu_pid}) - $cpu0) * 1e6 / $res->{requests} : undef;
	printf STDERR "%-20s %10.0f rps  p50 %7.3f ms  p99 %7.3f ms  errors %d/%d\n", $name, $res->{rps},
		$res->{p50_ms} // -1, $res->{p99_ms} // -1, $res->{non2xx},
		$res->{connect} + $res->{read} + $res->{write} + $res->{timeout};
	return $res;
}

1;
