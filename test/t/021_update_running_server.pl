# ALTER EXTENSION s3scan_jobs UPDATE in a server that still runs the previous library: after
# version 1.4's files are installed over a server that preloads 1.3's library
# (shared_preload_libraries), the running server keeps 1.3's library until it restarts, and 1.4's
# update script needs C functions that library lacks. Checked:
# (a) ALTER EXTENSION s3scan_jobs UPDATE in the running server fails with SQLSTATE 55000, the
#     message "the s3scan_jobs library loaded in this server is older than version 1.4" and a
#     HINT to restart the server (not with "could not find function ..."); nothing of 1.4 is
#     left behind: the extension is still 1.3, with the same objects and exact counts, and the
#     refresh worker (1.3's) goes on folding; a CREATE EXTENSION (now 1.4) in another database
#     fails the same way;
# (b) after a restart (1.4's library) the 1.3 schema still works until the update: the worker
#     folds, the counts are exact;
# (c) ALTER EXTENSION s3scan_jobs UPDATE then succeeds: version 1.4, counter_maintenance() true,
#     verify_job_counters() finds nothing, job_status(id, true) and the views equal a recount,
#     and writes after the update are counted (also once the worker folded them).
#
# Installing an old library must not touch the PostgreSQL installation other tests use: the
# test runs on a private copy of it (bin, lib and share copied into a tree with the same
# relative layout, so that the copy's pg_config and postgres find their own share and lib
# directories; the headers are linked), into which it installs s3scan_jobs 1.3 built from git
# (commit 3883a89) and later the tree under test (1.4).
#
# The git history: run-tests.sh runs the suites in a copy of the tree without .git. The test
# takes the repository from S3SCAN_GIT_DIR when set (an error if it lacks the commit); otherwise
# it finds the checkout run-tests.sh was started from, through its parent processes: the
# directory they were started in (the checkout's root for `.ci/run` and for the README's
# command), or the path of test/run-tests.sh on their command line. Without history (a copy, a
# shallow clone) it skips, saying so.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use IPC::Run;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCounters;

# Version 1.3 (git show 3883a89:s3scan_jobs.control).
my $V13_COMMIT = '3883a890e86ad4053b3de787b21ce46dcb5e2687';
my $started    = time();
my $srcdir     = dirname(dirname($FindBin::RealBin));    # the tree under test (1.4)
my $db         = 'scan';

# What 1.4's update script says when the server runs an older library.
my $older = 'the s3scan_jobs library loaded in this server is older than version 1.4';
my $hint  = 'The server preloads it (shared_preload_libraries): restart the server after '
  . 'installing s3scan_jobs 1.4, then run ALTER EXTENSION s3scan_jobs UPDATE again.';
my $OLDER_LIBRARY = qr/^(?:psql:\S+ )?ERROR:  55000: \Q$older\E$/m;
my $RESTART_HINT  = qr/^HINT:  \Q$hint\E$/m;
# (CREATE EXTENSION runs the full 1.4 script, whose hint says to create it again.)
my $create_hint = 'The server preloads it (shared_preload_libraries): restart the server after '
  . 'installing s3scan_jobs 1.4, then run CREATE EXTENSION s3scan_jobs again.';
my $CREATE_RESTART_HINT = qr/^HINT:  \Q$create_hint\E$/m;

# Runs a command; returns (success, stdout + stderr).
sub run_cmd
{
	my (@cmd) = @_;
	my $out = '';
	my $ok = IPC::Run::run(\@cmd, '>&', \$out);
	return ($ok, $out);
}

# Git, run as the server user on a checkout another user may own: safe.directory only for this
# command (git refuses such a repository otherwise).
sub git
{
	my ($dir, @args) = @_;
	return run_cmd('git', '-c', 'safe.directory=*', '-C', $dir, @args);
}

# --- Where the git history is ------------------------------------------------------------------

# Where the checkout the tests were started from may be: run-tests.sh's shell passes its PWD
# (where it was started) to the server user's shell, whose `cd` into the copy leaves that in
# OLDPWD for make; these are in the environments the parent processes of this test started with
# (/proc/PID/environ; processes of other users, such as su or a root shell, are not readable and
# are passed over). A parent's command line (readable by all) naming .../test/run-tests.sh gives
# the checkout too, relative to those directories when the path is relative.
# Returns [directory, how it was found] pairs, nearest parent first.
sub invocation_candidates
{
	my (@dirs, @scripts);
	my $pid = getppid();
	for (1 .. 30)
	{
		last if $pid <= 1;
		open my $st, '<', "/proc/$pid/stat" or last;
		my $stat = <$st> // '';
		close $st;
		my ($comm, $ppid) = $stat =~ /\((.*)\)\s+\S+\s+(\d+)/s or last;
		if (open my $fh, '<', "/proc/$pid/environ")
		{
			local $/;
			my $env = <$fh> // '';
			close $fh;
			for (split /\0/, $env)
			{
				push @dirs, [ $2, "$1 of $comm ($pid)" ] if /^(PWD|OLDPWD)=(.+)$/s;
			}
		}
		if (open my $fh, '<', "/proc/$pid/cmdline")
		{
			local $/;
			my $cmdline = <$fh> // '';
			close $fh;
			push @scripts, map { [ $_, "$comm ($pid)" ] }
			  grep { m{(?:^|/)test/run-tests\.sh$} } split /\0/, $cmdline;
		}
		$pid = $ppid;
	}
	my @found = @dirs;
	for my $s (@scripts)
	{
		my ($script, $who) = @$s;
		my $root = dirname(dirname($script));
		if ($root =~ m{^/})
		{
			push @found, [ $root, "the command line of $who" ];
		}
		else
		{
			push @found, map { [ "$_->[0]/$root", "the command line of $who and $_->[1]" ] } @dirs;
		}
	}
	return @found;
}

# A checkout holding $V13_COMMIT: (directory, how it was found), or (undef, where it looked).
sub find_git_history
{
	my $has = sub {
		my ($dir) = @_;
		return 0 unless -d $dir;
		my ($ok) = git($dir, 'cat-file', '-e', "$V13_COMMIT:s3scan_jobs.control");
		return $ok;
	};
	if (defined $ENV{S3SCAN_GIT_DIR} && $ENV{S3SCAN_GIT_DIR} ne '')
	{
		return ($ENV{S3SCAN_GIT_DIR}, 'S3SCAN_GIT_DIR') if $has->($ENV{S3SCAN_GIT_DIR});
		die "S3SCAN_GIT_DIR=$ENV{S3SCAN_GIT_DIR}: no git repository with commit $V13_COMMIT "
		  . "(s3scan_jobs 1.3) there (a shallow clone lacks it)\n";
	}
	my %seen;
	my @looked;
	for my $c (invocation_candidates())
	{
		my ($dir, $how) = @$c;
		next if $seen{$dir}++;
		push @looked, $dir;
		return ($dir, $how) if $has->($dir);
	}
	return (undef, join(', ', @looked) || 'nowhere');
}

{
	my ($ok) = run_cmd('git', '--version');
	plan skip_all => 'git is not installed: it builds s3scan_jobs 1.3 from the history' unless $ok;
}
my ($repo, $repo_how) = find_git_history();
plan skip_all => "no git history with commit $V13_COMMIT (s3scan_jobs 1.3): run-tests.sh runs "
  . 'the tests in a copy without .git; set S3SCAN_GIT_DIR to a clone with history '
  . "(looked in: $repo_how)"
  unless defined $repo;
note("s3scan_jobs 1.3 from commit $V13_COMMIT in $repo ($repo_how)");

# --- A private copy of the PostgreSQL installation ---------------------------------------------

my $tmp = PostgreSQL::Test::Utils::tempdir;

# The installation the suite runs with: the pg_config first in PATH (PGXS puts the bindir of
# its PG_CONFIG there).
sub pg_config
{
	my ($pg_config, @opts) = @_;
	my ($ok, $out) = run_cmd($pg_config, @opts);
	BAIL_OUT("$pg_config @opts: $out") unless $ok;
	chomp $out;
	return $out;
}
my @dir_names = qw(bindir pkglibdir sharedir includedir pkgincludedir includedir-server);
my %sys;
@sys{@dir_names} = split /\n/, pg_config('pg_config', map {"--$_"} @dir_names);
my $sys_version = pg_config('pg_config', '--version');
like($sys_version, qr/^PostgreSQL 15\./, "the suite's installation is PostgreSQL 15 ($sys_version)");

# A relocatable PostgreSQL finds its share and lib directories from its binary's location,
# relative to where the build put them: mirror every absolute directory under $root, which keeps
# their relative layout (Debian: $root/usr/lib/postgresql/15/{bin,lib}, $root/usr/share/postgresql/15).
# The binaries, libraries and share files are copied (the binary's real path counts, so no
# symlinks there); the headers, only read by the builds, are linked.
my $t0   = time();
my $root = "$tmp/pg";
for my $d (qw(bindir pkglibdir sharedir))
{
	make_path(dirname("$root$sys{$d}"));
	my ($ok, $out) = run_cmd('cp', '-a', $sys{$d}, "$root$sys{$d}");
	BAIL_OUT("copying $sys{$d}: $out") unless $ok;
}
for my $d (qw(includedir pkgincludedir includedir-server))
{
	next if -e "$root$sys{$d}";
	make_path(dirname("$root$sys{$d}"));
	symlink($sys{$d}, "$root$sys{$d}") or BAIL_OUT("symlink $root$sys{$d}: $!");
}
# The copy starts without s3scan_jobs (the suite installed the tree under test in the original).
unlink(glob("$root$sys{pkglibdir}/s3scan_jobs.so"),
	glob("$root$sys{pkglibdir}/bitcode/s3scan_jobs*"),
	glob("$root$sys{sharedir}/extension/s3scan_jobs*"));
my $copy_pg_config = "$root$sys{bindir}/pg_config";
my %copy;
@copy{@dir_names} = split /\n/, pg_config($copy_pg_config, map {"--$_"} @dir_names);
is_deeply(\%copy, { map { $_ => "$root$sys{$_}" } @dir_names },
	"the copy's pg_config reports the copy's directories");
is(pg_config($copy_pg_config, '--version'), $sys_version, 'the copy is the same version');
my $install_path = dirname($copy{bindir});
ok(-d "$install_path/lib", "the copy's bin and lib have a common parent ($install_path)");
note(sprintf('copied PostgreSQL into %s in %.1f s', $root, time() - $t0));

# The original's s3scan_jobs files, to see that nothing here touches them.
sub installed_files
{
	my (%dirs) = @_;
	return join("\n",
		map { my @s = stat($_); "$_ $s[7] $s[9] $s[1]" }
		  sort(glob("$dirs{pkglibdir}/s3scan_jobs*"), glob("$dirs{sharedir}/extension/s3scan_jobs*")));
}
my $sys_files = installed_files(%sys);

# make in a PGXS tree for the copy; without the variables the suite's make passed down.
sub make_copy
{
	my ($dir, @targets) = @_;
	delete local @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES)};
	return run_cmd('make', '-C', $dir, '-s', '-j2', "PG_CONFIG=$copy_pg_config", @targets);
}

# --- s3scan_jobs 1.3 from git, into the copy ---------------------------------------------------

$t0 = time();
my $src13 = "$tmp/s3scan_jobs-1.3";
mkdir $src13 or BAIL_OUT("mkdir $src13: $!");
{
	my $err = '';
	my $ok = IPC::Run::run(
		[ 'git', '-c', 'safe.directory=*', '-C', $repo, 'archive', '--format=tar', $V13_COMMIT ],
		'|', [ 'tar', '-x', '-C', $src13 ], '2>', \$err);
	BAIL_OUT("git archive $V13_COMMIT: $err") unless $ok;
}
like(slurp_file("$src13/s3scan_jobs.control"), qr/^default_version = '1\.3'$/m,
	"commit $V13_COMMIT is version 1.3");
{
	my ($ok, $out) = make_copy($src13);
	ok($ok, 'version 1.3 builds') or diag($out);
	($ok, $out) = make_copy($src13, 'install');
	ok($ok, 'version 1.3 installs into the copy') or diag($out);
	BAIL_OUT('no 1.3 to test with') unless $ok;
}
note(sprintf('built and installed 1.3 in %.1f s', time() - $t0));

# --- (a) 1.3 preloaded, 1.4 installed while it runs -------------------------------------------

my $node = PostgreSQL::Test::Cluster->new('running', install_path => $install_path);
$node->init;
$node->append_conf(
	'postgresql.conf',
	"log_line_prefix = '%m [%p] %b %q%a '\n"
	  . "log_statement = none\n"
	  . "max_parallel_workers_per_gather = 0\n"
	  . "shared_preload_libraries = 's3scan_jobs'\n"
	  . "s3scan_jobs.database = '$db'\n"
	  . "s3scan_jobs.refresh_interval = '1s'\n"
	  . "s3scan_jobs.fold_interval = '100ms'\n");
$node->start;
my $log_offset = log_size($node);
is($node->safe_psql('postgres',
		"SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions WHERE name = 's3scan_jobs'"),
	'1.0,1.1,1.2,1.3', 'the copy offers versions 1.0 to 1.3');
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.3', 'CREATE EXTENSION installs 1.3');

# Jobs of different sizes, objects in every status, findings, a job without objects, updates
# and deletes, a deleted job.
sub write_jobs
{
	my ($first, $tag) = @_;
	my $J = job_uuid_sql("$first + j");
	$node->safe_psql(
		$db, qq{
INSERT INTO jobs (job_id, bucket, prefix, execution_arn)
SELECT $J, 'b', 'p/', 'arn:$tag:' || j FROM generate_series(1, 5) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT $J, 'b', '$tag' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'e' END,
       (ARRAY['queued','processing','succeeded','failed'])[1 + (g * j) % 4],
       now() - (g % 500) * interval '1 minute'
FROM generate_series(1, 5) j, generate_series(1, (ARRAY[1200, 300, 0, 700, 50])[j]) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $J, 'b', '$tag' || g, 'e', 'email', '***', j
FROM generate_series(1, 5) j, generate_series(1, (ARRAY[400, 0, 0, 25, 3])[j]) g;
UPDATE job_objects SET status = 'succeeded' WHERE key LIKE '${tag}1%' AND status = 'queued';
DELETE FROM job_objects WHERE key LIKE '${tag}2%' AND job_id = ${\ job_uuid_sql("$first + 1")};
DELETE FROM findings WHERE key LIKE '${tag}3%';
DELETE FROM jobs WHERE job_id = ${\ job_uuid_sql("$first + 5")};
});
}

my $no_pending = 'SELECT count(*) = 0 FROM job_counter_deltas';
write_jobs(0, 'k');
ok(defined wait_for($node, $db, $no_pending), '1.3: the worker folds');
write_jobs(10, 'm');
my $worker_13 = worker_pid($node, $db);
ok(defined $worker_13, "1.3's refresh worker serves $db");
my $recount_13 = counters_exact($node, $db, '1.3 with data');
my @jobs_13 = split /\n/, $recount_13;
is(scalar(@jobs_13), 8, 'eight jobs');

# The objects of the extension, to see that a failed update leaves them as they were.
my $objects_sql = q{
SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 's3scan_jobs')
UNION ALL
SELECT 'event trigger ' || evtname || ' ' || evtenabled::text FROM pg_event_trigger
UNION ALL
SELECT 'acl ' || p.oid::regprocedure || ' ' || coalesce(p.proacl::text, '-') FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'replica identity ' || c.oid::regclass || ' ' || c.relreplident::text FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
ORDER BY 1};
my $objects_13 = $node->safe_psql($db, $objects_sql);

# 1.4's files over the running server's (the tree under test: built by the suite already).
$t0 = time();
{
	my ($ok, $out) = make_copy($srcdir, 'install');
	ok($ok, 'version 1.4 installs into the copy while the server runs') or diag($out);
	BAIL_OUT('no 1.4 to test with') unless $ok;
}
note(sprintf('installed 1.4 in %.1f s', time() - $t0));
is($node->safe_psql('postgres',
		"SELECT default_version FROM pg_available_extensions WHERE name = 's3scan_jobs'"),
	'1.4', 'the copy now offers 1.4');

my ($ret, $out, $err) = psql_result($node, $db, 'ALTER EXTENSION s3scan_jobs UPDATE');
isnt($ret, 0, 'ALTER EXTENSION UPDATE in the running server fails');
like($err, $OLDER_LIBRARY, '... with SQLSTATE 55000 and says the loaded library is older than 1.4');
like($err, $RESTART_HINT,  '... with a HINT to restart the server, then update again');
like($err, qr/^DETAIL:  could not find function "\w+" in file ".*s3scan_jobs\.so"$/m,
	'... and the missing function as DETAIL');
is(scalar(() = $err =~ /^(?:psql:\S+ )?ERROR:/mg),
	1, '... one error, and not "could not find function"')
  or diag($err);

is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.3', 'the extension is still 1.3');
is($node->safe_psql($db, $objects_sql), $objects_13,
	'its objects, event triggers, grants and replica identities are as before');
is(counters_exact($node, $db, 'after the failed update'), $recount_13, 'the same counts as before');

($ret, $out, $err) = psql_result($node, $db, "ALTER EXTENSION s3scan_jobs UPDATE TO '1.4'");
like($err, $OLDER_LIBRARY, "UPDATE TO '1.4' fails the same way");
like($err, $RESTART_HINT,  '... with the same HINT');

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
($ret, $out, $err) = psql_result($node, 'fresh', 'CREATE EXTENSION s3scan_jobs');
like($err, $OLDER_LIBRARY, 'CREATE EXTENSION (1.4) in another database fails the same way');
like($err, $CREATE_RESTART_HINT, '... with a HINT to restart the server, then create it again');
is($node->safe_psql('fresh', "SELECT count(*) FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'0', '... and leaves no extension there');

# 1.3's library still runs the 1.3 database: writes are counted and folded by the same worker.
$node->safe_psql(
	$db, qq{
UPDATE job_objects SET status = 'failed' WHERE key LIKE 'k4%';
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ${\ job_uuid_sql(2)}, 'b', 'between' || g, 'e', 'processing' FROM generate_series(1, 40) g;
DELETE FROM findings WHERE key LIKE 'm5%';
});
ok(defined wait_for($node, $db, $no_pending), '1.3 library, 1.4 files: the worker still folds');
is(worker_pid($node, $db), $worker_13, '... the same worker');
my $recount_before_restart = counters_exact($node, $db, '1.3 library, 1.4 files, after writes');

# --- (b) restarted: 1.4's library, 1.3's schema ------------------------------------------------

$t0 = time();
$node->restart;
note(sprintf('restarted in %.1f s', time() - $t0));
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE' AND datname = '$db'"),
	'after the restart a refresh worker serves the database');
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.3', 'still 1.3 until the update');
is(counters_exact($node, $db, '1.4 library, 1.3 schema'), $recount_before_restart,
	'the same counts after the restart');
$node->safe_psql(
	$db, qq{
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ${\ job_uuid_sql(11)}, 'b', 'restarted' || g, 'e', 'ssn', '***', 5 FROM generate_series(1, 30) g;
UPDATE job_objects SET status = 'queued' WHERE key LIKE 'm6%';
});
ok(defined wait_for($node, $db, $no_pending), '1.4 library, 1.3 schema: the worker folds');
counters_exact($node, $db, '1.4 library, 1.3 schema, after writes');

# --- (c) the update after the restart ----------------------------------------------------------

($ret, $out, $err) = psql_result($node, $db, 'ALTER EXTENSION s3scan_jobs UPDATE');
is($ret, 0, 'after the restart ALTER EXTENSION UPDATE succeeds') or diag($err);
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.4', 'version 1.4');
is($node->safe_psql($db, 'SELECT counter_maintenance()'), 't', 'counter_maintenance() is true');
is(verify_rows($node, $db), '', 'verify_job_counters() returns no row');
my $recount_14 = counters_exact($node, $db, 'updated to 1.4');
# job_status(id, true) of every job against the recount, column by column.
is( $node->safe_psql(
		$db, q{
SELECT count(*) FROM jobs j CROSS JOIN LATERAL job_status(j.job_id, true) s
WHERE (s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count,
       s.total_findings)
      IS DISTINCT FROM
      ((SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id),
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'queued'),
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'processing'),
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'succeeded'),
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'failed'),
       (SELECT count(*) FROM findings f WHERE f.job_id = j.job_id))}),
	'0', 'job_status(id, true) of every job equals a count of its rows');

# Writes after the update are counted, before and after the worker folds them.
$node->safe_psql(
	$db, qq{
INSERT INTO jobs (job_id, bucket, prefix) VALUES (${\ job_uuid_sql(30)}, 'b', 'after/');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ${\ job_uuid_sql(30)}, 'b', 'after' || g, 'e', (ARRAY['queued','failed'])[1 + g % 2]
FROM generate_series(1, 60) g;
UPDATE job_objects SET status = 'succeeded' WHERE key LIKE 'k5%';
DELETE FROM job_objects WHERE key LIKE 'm7%';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ${\ job_uuid_sql(30)}, 'b', 'after' || g, 'e', 'iban', '***', 9 FROM generate_series(1, 12) g;
DELETE FROM jobs WHERE job_id = ${\ job_uuid_sql(4)};
});
my $recount_after = counters_exact($node, $db, '1.4, after writes');
isnt($recount_after, $recount_14, 'the writes changed the recount');
like($recount_after, qr/^dddddddd-0000-4000-8000-000000000030\|60\|30\|0\|0\|30\|12\|/m,
	'the new job: 60 objects (30 queued, 30 failed), 12 findings');
ok(defined wait_for($node, $db, $no_pending), '1.4: the worker folds');
is(counters_exact($node, $db, '1.4, after the worker folded'), $recount_after,
	'the same counts once folded');

# No refresh worker or launcher error in the whole test (stopping them for the restart aside).
my @errors = grep { !/due to administrator command/ }
  log_lines($node, $log_offset, qr/(?:\Q$WORKER_TYPE\E|\Q$LAUNCHER_TYPE\E) .*(?:ERROR|FATAL|PANIC)/);
is(scalar(@errors), 0, 'the refresh worker and the launcher logged no error')
  or diag(join("\n", @errors));

$node->stop;
is(installed_files(%sys), $sys_files, "the suite's installation was not touched");
note(sprintf('the whole test: %.1f s', time() - $started));
done_testing();
