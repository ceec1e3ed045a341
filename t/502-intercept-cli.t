# `wingman intercept` as a command: flag errors, status/remove of nothing,
# install twice (an init container restarting), status details, remove.
# Uses its own cgroup and network namespace. Needs root.
use strict;
use warnings;
use Test::More;
use Wingman;
use Pod;

my $why = Pod::unavailable();
plan skip_all => $why if $why;

my $bin = wingman_bin();
sub icpt {
	my $cmd = join ' ', map { Pod::sh_quote($_) } $bin, 'intercept', @_;
	my $out = `$cmd 2>&1`;
	return ($? >> 8, $out);
}

my ($rc, $out) = icpt();
is($rc, 2, 'no command: a command-line error');
like($out, qr/^wingman: intercept: missing command \(install, remove, status\)\nTry 'wingman intercept --help'/,
     '… prefixed wingman:, with the commands and where to read more');
($rc, $out) = icpt('frobnicate');
is($rc, 2, 'unknown command');
like($out, qr/^wingman: intercept: unknown command "frobnicate"/, '… named');
($rc, $out) = icpt('install', '--outbound-port', '70000');
is($rc, 2, 'bad port');
like($out, qr/--outbound-port: "70000" is not a port/, '… explained');
($rc, $out) = icpt('install', '--exclude-cidrs', '10.0.0.0/33');
like($out, qr/--exclude-cidrs: "10.0.0.0\/33" is not a CIDR/, 'bad CIDR explained');
($rc, $out) = icpt('install', '--exclude-ports', '22,x');
like($out, qr/--exclude-ports: "x" is not a port/, 'bad port list explained');
($rc, $out) = icpt('install', '--exclude-uid', 'root');
like($out, qr/--exclude-uid: "root" is not a uid/, 'bad uid explained');
($rc, $out) = icpt('install', '--outbound-port', '15006');
like($out, qr/must differ/, 'same inbound and outbound port refused');
($rc, $out) = icpt('install', '--cgroup', '/tmp');
is($rc, 1, 'not a cgroup: fails');
like($out, qr/\/tmp is not a cgroup v2 directory/, '… explained');

my $cg = Pod::cgroup2_root() . "/wingman-test-cli-$$";
my $ns = "wm$$-cli";
mkdir $cg or die "mkdir $cg: $!";
system('ip', 'netns', 'add', $ns) == 0 or die 'ip netns add';
END { system("$bin intercept remove --cgroup $cg >/dev/null 2>&1") if $cg; rmdir $cg if $cg;
	system('ip', 'netns', 'del', $ns) if $ns; }

($rc, $out) = icpt('status', '--cgroup', $cg);
is($rc, 1, 'status before install: 1');
like($out, qr/not installed for cgroup \Q$cg\E/, '… says so');
($rc, $out) = icpt('remove', '--cgroup', $cg);
is($rc, 0, 'remove of nothing is not an error');
like($out, qr/nothing installed/, '… says so');

my @args = ('--cgroup', $cg, '--netns', "/run/netns/$ns", '--outbound-port', '25001', '--inbound-port', '25006',
	'--exclude-uid', '4242', '--exclude-ports', '22,9999', '--exclude-cidrs', '10.1.0.0/16,fd00::/8');
($rc, $out) = icpt('install', @args);
is($rc, 0, 'install') or diag($out);
($rc, $out) = icpt('install', @args);
is($rc, 0, 'install again replaces') or diag($out);
($rc, $out) = icpt('status', '--cgroup', $cg);
is($rc, 0, 'status: attached') or diag($out);
like($out, qr/outbound -> 127\.0\.0\.1:25001, inbound -> :25006, exclude uid 4242/, 'ports and uid');
like($out, qr/exclude ports: (22,9999|9999,22)/, 'excluded ports');
like($out, qr/exclude cidrs: 10\.1\.0\.0\/16,fd00::\/8/, 'excluded CIDRs');
for my $t (qw(cgroup/connect4 cgroup/connect6 sockops cgroup/getsockopt sk_lookup)) {
	like($out, qr/^\s+\Q$t\E\s+attached: prog \d+/m, "$t attached");
}
my $cgid = (stat $cg)[1];
($rc, $out) = icpt('status');
like($out, qr/\/sys\/fs\/bpf\/wingman\/cg$cgid\n/, 'status without --cgroup lists it');
my $links = `bpftool link show 2>/dev/null`;
($rc, $out) = icpt('remove', '--cgroup', $cg);
is($rc, 0, 'remove');
ok(!-e "/sys/fs/bpf/wingman/cg$cgid", 'pin directory gone');
($rc, $out) = icpt('status', '--cgroup', $cg);
is($rc, 1, 'status after remove: 1');
SKIP: {
	skip 'bpftool not installed', 1 unless have_prog('bpftool');
	my $after = `bpftool link show 2>/dev/null`;
	unlike($after, qr/cgroup_id $cgid\b/, 'no link left on the cgroup');
}
done_testing;
