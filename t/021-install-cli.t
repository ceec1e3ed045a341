# CLI manners: `make install DESTDIR=` puts the binary, the man page and the
# default config where they belong (an edited config survives a reinstall,
# uninstall takes them away); `man wingman` renders the page from there, with
# its sections and the installed config's path; every command-line mistake is
# one "wingman: " line naming the bad argument, with the exit status the page
# documents (0, 1, 2).
use strict;
use warnings;
use File::Find;
use Test::More;
use Wingman;

my $bin = wingman_bin();
my $src = $ENV{WINGMAN_SRCDIR} // '.';
my $build = $bin =~ s{/proxy/wingman$}{}r;

# Runs a command; returns its exit status and what it printed (stdout and stderr).
sub run {
	my (@cmd) = @_;
	my $q = join ' ', map { "'" . s/'/'\\''/gr . "'" } @cmd;
	my $out = `$q 2>&1`;
	return ($? >> 8, $out);
}

# ---- the command line
my @usage = (
	[['--frob'], qr/^wingman: unknown option '--frob'$/m],
	[['-Z'], qr/^wingman: unknown option '-Z'$/m],
	[['-x'], qr/^wingman: option '-x' needs a value$/m],
	[['-c'], qr/^wingman: option '-c' needs a value$/m],
	[['--config'], qr/^wingman: option '--config' needs a value$/m],
	[['--version=2'], qr/^wingman: option '--version' takes no value$/m],
	[['-l', 'loud'], qr/^wingman: -l: unknown log level 'loud' \(expected: error, warn, info, debug\)$/m],
	[['-t', 'extra'], qr/^wingman: unexpected argument 'extra'$/m],
	[['frob'], qr/^wingman: unknown command 'frob'/m],
	[['config'], qr/^wingman: config: missing subcommand \(expected: config show\)$/m],
	[['config', 'frob'], qr/^wingman: config: unknown subcommand 'frob'/m],
	[['config', 'show', 'extra'], qr/^wingman: unexpected argument 'extra'$/m],
	[['intercept', 'frob'], qr/^wingman: intercept: unknown command "frob"/m],
	[['intercept', 'status', '--frob'], qr/^wingman: intercept: unknown option '--frob'$/m],
	[['intercept', 'install', '--outbound-port', '70000'], qr/^wingman: intercept: --outbound-port: "70000" is not a port/m],
);
for my $u (@usage) {
	my ($args, $want) = @$u;
	my ($rc, $out) = run($bin, @$args);
	is($rc, 2, "wingman @$args: exit 2");
	like($out, $want, '  one wingman: line naming the argument');
	like($out, qr/^Try 'wingman( intercept)? --help' or 'man wingman'\.$/m, '  and where to read more');
	unlike($out, qr{/proxy/wingman:|^usage:}m, '  no path as the prefix, no usage dump');
}
my $dir = tmpdir();
spew("$dir/bad.yaml", "listeners:\n  - name: x\n    address: nowhere\n");
my ($rc, $out) = run($bin, '-c', "$dir/bad.yaml");
is($rc, 1, 'a bad config: exit 1');
like($out, qr/^\Q$dir\E\/bad\.yaml:\d+:\d+: /m, '  its errors as FILE:LINE:COL');
like($out, qr/^wingman: configuration \Q$dir\E\/bad\.yaml has \d+ errors?; not starting$/m, '  then one wingman: line');
($rc, $out) = run($bin, '-t', '-c', "$dir/bad.yaml");
is($rc, 1, '-t of a bad config: exit 1');
like($out, qr/^wingman: configuration \Q$dir\E\/bad\.yaml test failed/m, '  says the test failed');
($rc, $out) = run($bin, '-c', "$dir/none.yaml");
is($rc, 1, 'a missing config file: exit 1');
like($out, qr/none\.yaml: cannot read: No such file/, '  named');
($rc, $out) = run($bin, '--help');
is($rc, 0, '--help: exit 0');
like($out, qr/^Exit status: 0 ok, 1 configuration errors or a failed start, 2 a command-line error\.$/m,
     '  with the exit statuses');
($rc, $out) = run($bin, '--version');
is($rc, 0, '--version: exit 0');
like($out, qr/^wingman \d+\.\d+\.\d+$/, '  the version');

# ---- make install DESTDIR=
SKIP: {
	skip "no build tree beside $bin", 20 unless -f "$build/Makefile";
	my $dest = "$dir/dest";
	# Not the jobserver of a make that runs this test.
	local @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES)};
	delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES)};
	($rc, $out) = run('make', '-s', '-C', $build, 'install', "DESTDIR=$dest");
	is($rc, 0, 'make install DESTDIR= succeeds') or diag($out);
	my %f;
	find(sub { $f{$File::Find::name =~ s/^\Q$dest\E//r} = 1 if -f }, $dest);
	my ($ibin) = grep { m{/bin/wingman$} } keys %f;
	my ($iman) = grep { m{/share/man/man8/wingman\.8$} } keys %f;
	my ($iconf) = grep { m{/etc/wingman/wingman\.yaml$} } keys %f;
	ok($ibin, "the binary: $ibin");
	ok($iman, "the man page: $iman");
	ok($iconf, "the default config: $iconf");
	ok(-x "$dest$ibin", '  the binary is executable');
	like((run("$dest$ibin", '--version'))[1], qr/^wingman \d/, '  and runs');
	is(slurp("$dest$iconf"), slurp("$src/conf/wingman.yaml"), 'the config is conf/wingman.yaml');
	is((run("$dest$ibin", '-t', '-c', "$dest$iconf"))[0], 0, '  and valid');

	# man wingman, from where it was installed
	my $mandir = "$dest" . ($iman =~ s{/man8/wingman\.8$}{}r);
	local $ENV{MANPATH} = $mandir;
	local $ENV{MANWIDTH} = 100;
	local $ENV{MANPAGER} = 'cat';
	local $ENV{PAGER} = 'cat';
	($rc, $out) = run('man', '-w', 'wingman');
	is($rc, 0, 'man -w wingman finds it in the installed tree') or diag($out);
	($rc, my $page) = run('man', 'wingman');
	is($rc, 0, 'man wingman renders');
	like($page, qr/^WINGMAN\(8\)/m, '  as wingman(8)');
	for my $sec ('NAME', 'SYNOPSIS', 'OPTIONS', 'COMMANDS', 'FILES', 'SIGNALS', 'EXIT STATUS', 'EXAMPLES') {
		like($page, qr/^\Q$sec\E$/m, "  section $sec");
	}
	like($page, qr/config show/, '  config show');
	like($page, qr/intercept install/, '  intercept');
	like($page, qr/SIGHUP.*SIGTERM.*SIGUSR1/s, '  the signals');
	(my $conf_path = $iconf) =~ s/^\s+//;
	like($page =~ s/\x{2010}\n\s+|-\n\s+//gr, qr/\Q$conf_path\E/, '  the installed config\'s path');
	my ($exit) = $page =~ /^EXIT STATUS\n(.*?)^EXAMPLES/ms;
	like($exit // '', qr/^\s+$_\s/m, "  exit status $_ documented") for 0 .. 3;
	($rc, $out) = run('man', '--warnings', '-l', "$dest$iman");
	unlike($out, qr/warning:/, 'man -l with warnings on: none');

	# a reinstall keeps an edited config; uninstall removes what install put
	spew("$dest$iconf", slurp("$dest$iconf") . "# edited\n");
	($rc, $out) = run('make', '-s', '-C', $build, 'install', "DESTDIR=$dest");
	like(slurp("$dest$iconf"), qr/# edited\n\z/, 'a second make install keeps the edited config');
	($rc, $out) = run('make', '-s', '-C', $build, 'uninstall', "DESTDIR=$dest");
	is($rc, 0, 'make uninstall');
	ok(!-e "$dest$_", "  removes $_") for ($ibin, $iman, $iconf);
}
done_testing();
